package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attachd/attachd/server/hooks"
	"github.com/attachd/attachd/server/store"
)

func runRetention(args ...string) (string, error) {
	var out bytes.Buffer
	a := app()
	a.Writer, a.ErrWriter, a.ExitErrHandler = &out, &out, nil
	err := a.Run(append([]string{"attachd", "retention"}, args...))
	if err != nil {
		fmt.Fprintln(&out, "attachd:", err)
	}
	return out.String(), err
}

// TestRetentionCommands: plan shows what would go and deletes nothing; run
// refuses a data directory in use, deletes the expired objects otherwise,
// keeps the held one, and queues the hook's events with the reason.
func TestRetentionCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	st, err := store.Open(data, store.Options{Sinks: []string{hooks.Sink("audit")}})
	if err != nil {
		t.Fatal(err)
	}
	old := func(days int) store.Info {
		ts := time.Now().Add(-time.Duration(days)*24*time.Hour).Unix() + 62167219200
		return store.Info{Size: -1, ContentType: "audio/mpeg", Meta: []byte(fmt.Sprintf(`{"store_query":{"timestamp":"%d"}}`, ts))}
	}
	for key, info := range map[string]store.Info{
		"k/acct/old.mp3": old(100), "k/acct/older.mp3": old(400), "k/acct/new.mp3": old(5),
		"k/acct/held/old.mp3": old(500), "other/old.mp3": old(900),
	} {
		if _, err := st.Put(ctx, key, strings.NewReader("bytes of "+key), info); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	cfg := filepath.Join(dir, "attachd.toml")
	// The hook is never started: run only queues its events.
	os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir = %q
hooks = ["audit"]
[plugins]
dir = "/nonexistent"
[plugin.audit]
sha256 = "`+strings.Repeat("ab", 32)+`"
[[retention]]
prefix = "/k/"
max_age = "12w"
[[hold]]
prefix = "/k/acct/held"
note = "case 9"
[[quota]]
prefix = "/k"
objects = 100
`, data)), 0o600)

	out, err := runRetention("plan", "-c", cfg)
	if err != nil {
		t.Fatal(out)
	}
	for _, want := range []string{"WOULD DELETE", "/k/     -      12w", "k/acct/older.mp3 (", "k/acct/old.mp3 (",
		"5 objects looked at; 1 expired but kept by a hold", "hold /k/acct/held: case 9"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(strings.Split(out, "\n")[1], " 2 ") {
		t.Errorf("plan: want 2 objects on rule 1:\n%s", out)
	}

	st, err = store.Open(data, store.Options{Sinks: []string{hooks.Sink("audit")}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runRetention("run", "-c", cfg); err == nil || !strings.Contains(out, "in use") {
		t.Errorf("run beside an open store: %v\n%s", err, out)
	}
	st.Close()

	out, err = runRetention("run", "-c", cfg, "--rate", "100")
	if err != nil || !strings.Contains(out, "DELETED") {
		t.Fatalf("run: %v\n%s", err, out)
	}
	// The run kept the usage row of the configured quota's folder, up to
	// date, for the server.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "index.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var objects int64
	err = db.QueryRow(`SELECT objects FROM folder_usage WHERE prefix = 'k'`).Scan(&objects)
	db.Close()
	if err != nil || objects != 2 {
		t.Errorf("usage row of /k after the run: %d objects, %v; want 2", objects, err)
	}
	st, err = store.Open(data, store.Options{Sinks: []string{hooks.Sink("audit")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for key, want := range map[string]bool{"k/acct/old.mp3": false, "k/acct/older.mp3": false,
		"k/acct/new.mp3": true, "k/acct/held/old.mp3": true, "other/old.mp3": true} {
		if _, err := st.Stat(ctx, key); (err == nil) != want {
			t.Errorf("%s: kept %v, want %v", key, err == nil, want)
		}
	}
	ds, err := st.ClaimDeliveries(ctx, hooks.Sink("audit"), 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for _, d := range ds {
		if d.Type == store.ChangeDeleted {
			deleted++
			if d.Reason != "retention" {
				t.Errorf("%s: reason %q", d.Key, d.Reason)
			}
		}
	}
	if deleted != 2 {
		t.Errorf("%d deleted events, want 2", deleted)
	}
}
