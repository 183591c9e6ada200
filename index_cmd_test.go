package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/index/pg"
	"github.com/attachd/attachd/server/index/pg/pgtest"
	"github.com/attachd/attachd/server/store"
)

// copyTarget creates an empty database beside $ATTACHD_TEST_PG_URL's
// (pgtest), dropped when t ends, and returns its URL and password.
func copyTarget(t *testing.T) (string, string) {
	t.Helper()
	target := pgtest.Database(t)
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	if pw == "" {
		t.Fatal("ATTACHD_TEST_PG_URL has no password: the tests check that it is never shown")
	}
	return target, pw
}

// copyDataDir makes a data directory of a single node in spool mode, with
// n objects in three folders and a hook, stopped cleanly.
func copyDataDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s, err := store.Open(dir, store.Options{Sinks: []string{"hook:crm"}, Remote: store.NewMemBackend()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		k := fmt.Sprintf("acct/%d/vm%04d.mp3", i%3, i)
		if _, err := s.Put(context.Background(), k, strings.NewReader(k), store.Info{ContentType: "audio/mpeg", Size: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runIndex(args ...string) (string, error) {
	var out bytes.Buffer
	a := app()
	a.Writer, a.ErrWriter, a.ExitErrHandler = &out, &out, nil
	err := a.Run(append([]string{"attachd", "index"}, args...))
	if err != nil {
		fmt.Fprintln(&out, "attachd:", err) // as main prints it
	}
	return out.String(), err
}

func objectCount(t *testing.T, u string) int {
	t.Helper()
	x, err := pg.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	n := 0
	x.Walk(context.Background(), "", func(index.Object) error { n++; return nil })
	return n
}

func TestIndexCopyCommand(t *testing.T) {
	dir := copyDataDir(t, 25)
	u, pw := copyTarget(t)

	out, err := runIndex("copy", "--data-dir", dir, "--to", u)
	t.Logf("without --node-url:\n%s", out)
	if err == nil || !strings.Contains(out, "25 objects are still in the spool") || !strings.Contains(out, "--node-url") {
		t.Fatalf("spooled objects without a node: %v", err)
	}
	out, err = runIndex("copy", "--data-dir", dir, "--to", u, "--node-url", "http://10.0.0.5:37635", "--batch", "5")
	t.Logf("copy:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"copying the index of " + dir + " into postgres://attachd:xxxxx@",
		"copied 5/25 objects (20%)\n",
		"copied 25 objects, 4 folders, 0 locks, 50 deliveries into postgres://",
		"note: 25 objects are still in this node's spool",
		"is now sink replicate@" + clusterNode("http://10.0.0.5:37635") + ", the node with advertise_url http://10.0.0.5:37635:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, pw) {
		t.Errorf("the password is in the output")
	}
	if n := objectCount(t, u); n != 25 {
		t.Fatalf("%d objects in the target", n)
	}
	out, err = runIndex("copy", "--data-dir", dir, "--to", u, "--node-url", "http://10.0.0.5:37635")
	if err == nil || !strings.Contains(out, "was copied into the PostgreSQL index at postgres://attachd:xxxxx@") || strings.Contains(out, pw) {
		t.Fatalf("copied again: %v\n%s", err, out)
	}
	// Into a database another data directory filled.
	other := copyDataDir(t, 1)
	out, err = runIndex("copy", "--data-dir", other, "--to", u, "--node-url", "http://10.0.0.6:37635")
	if err == nil || !strings.Contains(out, "already holds 25 objects, 4 folders, 50 deliveries") || strings.Contains(out, pw) {
		t.Fatalf("into a database in use: %v\n%s", err, out)
	}
	// A server that cannot be reached.
	start := time.Now()
	out, err = runIndex("copy", "--data-dir", other, "--to", "postgres://attachd:"+pw+"@127.0.0.1:1/x", "--node-url", "http://10.0.0.6:37635")
	if err == nil || !strings.Contains(out, "127.0.0.1:1") || strings.Contains(out, pw) || time.Since(start) > 10*time.Second {
		t.Fatalf("unreachable: %v after %s\n%s", err, time.Since(start), out)
	}
}

// TestIndexCopyKilled kills the copy (-9) while it runs and runs it again:
// the database ends with every object once.
func TestIndexCopyKilled(t *testing.T) {
	u, pw := copyTarget(t)
	dir := copyDataDir(t, 600)
	bin := filepath.Join(t.TempDir(), "attachd")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	args := []string{"index", "copy", "--data-dir", dir, "--to", u, "--node-url", "http://10.0.0.5:37635", "--batch", "2"}
	cmd := exec.Command(bin, args...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		t.Logf("first run: %s", sc.Text())
		if strings.Contains(sc.Text(), " objects (") {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	killedAt := objectCount(t, u)
	if killedAt == 0 || killedAt == 600 {
		t.Fatalf("killed with %d objects copied: not in the middle", killedAt)
	}
	b, err := exec.Command(bin, args...).CombinedOutput()
	t.Logf("second run (after %d objects):\n%s", killedAt, b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("finished an interrupted copy: 600 objects, 4 folders, 0 locks, 1200 deliveries")) ||
		bytes.Contains(b, []byte(pw)) {
		t.Fatal("unexpected output")
	}
	x, err := pg.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	st, err := x.OutboxStats(context.Background())
	if err != nil || len(st) != 2 || st[0].Pending != 600 || st[1].Pending != 600 ||
		st[1].Sink != "replicate@"+clusterNode("http://10.0.0.5:37635") {
		t.Fatalf("deliveries: %+v, %v", st, err)
	}
	if n := objectCount(t, u); n != 600 {
		t.Fatalf("%d objects", n)
	}
}

// TestCopyBar: on a terminal one line redrawn in place, with rate and time
// left; elsewhere a line every 2 s or 10 000 objects.
func TestCopyBar(t *testing.T) {
	t0 := time.Now()
	p := func(objects int64) store.CopyProgress {
		return store.CopyProgress{Phase: "objects", Done: store.CopyCounts{Objects: objects}, Total: store.CopyCounts{Objects: 40000}}
	}
	var tty bytes.Buffer
	b := &copyBar{w: &tty, tty: true, start: t0}
	b.show(p(0), t0)
	b.show(p(1000), t0.Add(10*time.Millisecond)) // too soon to redraw
	b.show(p(10000), t0.Add(time.Second))
	b.end()
	want := "\r\x1b[K[>                             ] 0/40000 objects   0%" +
		"\r\x1b[K[=======>                      ] 10000/40000 objects  25%  10000/s  ETA 3s\n"
	if tty.String() != want {
		t.Errorf("terminal:\n%q\nwant\n%q", tty.String(), want)
	}
	var log bytes.Buffer
	b = &copyBar{w: &log, start: t0}
	for _, step := range []struct {
		at   time.Duration
		done int64
	}{{0, 0}, {time.Second, 4000}, {1500 * time.Millisecond, 8000}, {3 * time.Second, 12000},
		{3100 * time.Millisecond, 16000}, {3200 * time.Millisecond, 20000}, {3300 * time.Millisecond, 40000}} {
		b.show(p(step.done), t0.Add(step.at))
	}
	want = "copied 0/40000 objects (0%)\ncopied 12000/40000 objects (30%)\ncopied 20000/40000 objects (50%)\n" +
		"copied 40000/40000 objects (100%)\n"
	if log.String() != want {
		t.Errorf("log:\n%s\nwant\n%s", log.String(), want)
	}
}
