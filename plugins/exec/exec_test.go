package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attachd/attachd/plugins/hook"
	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/plugins/internal/plugintest"
	"github.com/attachd/attachd/server/store"
)

// binary is the real plugin, built once by TestMain.
var binary string

func TestMain(m *testing.M) { plugintest.Main(m, "exec", &binary) }

// objects is what the test's attachd stores: key → bytes.
type objects map[string][]byte

// open is the hook.ContentOpener the host serves plugins from.
func (o objects) open(ctx context.Context, key, sum string) (io.ReadCloser, error) {
	b, ok := o[key]
	if !ok || sha(b) != sum {
		return nil, store.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// newManager starts the real plugin through the real host.
func newManager(t *testing.T, cfg map[string]any, objs objects) (*host.Manager, error) {
	t.Helper()
	return plugintest.Start(t, binary, "exec", host.Plugin{Config: cfg}, objs.open)
}

// script starts the exec plugin running a /bin/sh script, with OUT set to
// a folder the script may write to. It returns the hook and OUT.
func script(t *testing.T, sh string, cfg map[string]any, objs objects) (hook.Hook, string) {
	t.Helper()
	out := t.TempDir()
	if cfg == nil {
		cfg = map[string]any{}
	}
	cfg["command"] = []any{"/bin/sh", "-c", sh, "hook"}
	cfg["env"] = map[string]any{"OUT": out, "GREETING": "hello world"}
	m, err := newManager(t, cfg, objs)
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.Hook("exec")
	if err != nil {
		t.Fatal(err)
	}
	return h, out
}

func event(id, typ, key string, data []byte) hook.Event {
	return hook.Event{
		Schema: hook.SchemaVersion, EventID: id, Type: typ, Attempt: 1,
		OccurredAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Object:     hook.Object{Key: key, Size: int64(len(data)), SHA256: sha(data), ContentType: "audio/mpeg"},
	}
}

func deliver(t *testing.T, h hook.Hook, ev hook.Event) hook.Result {
	t.Helper()
	start := time.Now()
	res, err := h.Deliver(context.Background(), ev)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	t.Logf("Deliver %s: outcome %v after %v, annotations %q, message %q",
		ev.EventID, res.Outcome, time.Since(start).Round(time.Millisecond), res.Annotations, res.Message)
	return res
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// checkContent is a hook script that checks everything it is given: the
// bytes' SHA-256 and size, the event on stdin, the environment. It prints
// annotations and a line that is not one.
const checkContent = `
set -eu
fail() { echo "check failed: $*" >&2; exit 3; }
echo "$ATTACHD_CONTENT_PATH" > "$OUT/path"
[ "$ATTACHD_KIND" = "$(stat -c %F "$ATTACHD_CONTENT_PATH")" ] || fail "kind $(stat -c %F "$ATTACHD_CONTENT_PATH")"
[ "$(stat -c %a "$ATTACHD_CONTENT_PATH")" = 600 ] || fail "mode"
got=$(sha256sum < "$ATTACHD_CONTENT_PATH" | cut -d' ' -f1)
[ "$got" = "$ATTACHD_SHA256" ] || fail "sha256 $got, want $ATTACHD_SHA256"
event=$(cat)
case "$event" in *"\"event_id\":\"$ATTACHD_EVENT_ID\""*) ;; *) fail "stdin: $event" ;; esac
[ "$ATTACHD_EVENT_TYPE" = attachment.created ] || fail "type"
[ "$ATTACHD_KEY" = /acct/vm/1.mp3 ] || fail "key"
[ "$ATTACHD_CONTENT_TYPE" = audio/mpeg ] || fail "content type"
[ "$(basename "$ATTACHD_CONTENT_PATH")" = content.mp3 ] || fail "name"
[ "$(pwd)" = "$(dirname "$ATTACHD_CONTENT_PATH")" ] || fail "working directory"
[ -z "${ATTACHD_PLUGIN_MAGIC_COOKIE:-}" ] || fail "magic cookie leaked"
[ -z "${PLUGIN_CLIENT_CERT:-}" ] || fail "client cert leaked"
echo "progress: done"
echo "annotation: sha256=$got"
echo "annotation: size=$ATTACHD_SIZE"
echo "annotation:greeting = $GREETING"
echo "annotation: bad key=x"
`

func TestContentPath(t *testing.T) {
	data := randomBytes(t, 3<<20+17) // several chunks, odd size
	objs := objects{"/acct/vm/1.mp3": data}
	h, out := script(t, "ATTACHD_KIND='regular file'\n"+checkContent, nil, objs)
	res := deliver(t, h, event("ev1", hook.Created, "/acct/vm/1.mp3", data))
	want := map[string]string{"sha256": sha(data), "size": strconv.Itoa(len(data)), "greeting": " hello world"}
	if res.Outcome != hook.OK || !equal(res.Annotations, want) {
		t.Errorf("got %v %q, want OK %q", res.Outcome, res.Annotations, want)
	}
	if !strings.Contains(res.Message, `invalid keys ignored: "bad key"`) {
		t.Errorf("message %q does not note the bad key", res.Message)
	}
	checkRemoved(t, out)
}

func TestContentPipe(t *testing.T) {
	data := randomBytes(t, 3<<20+17) // far more than a pipe buffer
	objs := objects{"/acct/vm/1.mp3": data}
	h, out := script(t, "ATTACHD_KIND=fifo\n"+checkContent, map[string]any{"content": "pipe"}, objs)
	res := deliver(t, h, event("ev1", hook.Created, "/acct/vm/1.mp3", data))
	if res.Outcome != hook.OK || res.Annotations["sha256"] != sha(data) {
		t.Errorf("got %v %q", res.Outcome, res.Annotations)
	}
	checkRemoved(t, out)
}

// TestContentPipeUnread: a command that never opens the pipe, or stops
// reading early, finishes as fast as it would without one.
func TestContentPipeUnread(t *testing.T) {
	data := randomBytes(t, 1<<20)
	objs := objects{"/a.wav": data}
	for _, sh := range []string{
		"exit 0",
		`head -c 100 "$ATTACHD_CONTENT_PATH" > /dev/null`,
		`exec 3< "$ATTACHD_CONTENT_PATH"; sleep 0.2`, // opens, never reads
	} {
		h, _ := script(t, sh, map[string]any{"content": "pipe", "timeout": "20s"}, objs)
		start := time.Now()
		res := deliver(t, h, event("ev", hook.Updated, "/a.wav", data))
		if res.Outcome != hook.OK {
			t.Errorf("%s: %v %q", sh, res.Outcome, res.Message)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v", sh, d)
		}
	}
}

// checkRemoved checks that the content file or pipe the script saw is gone.
func checkRemoved(t *testing.T, out string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "path"))
	if err != nil {
		t.Fatal(err)
	}
	p := strings.TrimSpace(string(b))
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("content %s left behind: %v", p, err)
	}
	if _, err := os.Lstat(filepath.Dir(p)); !os.IsNotExist(err) {
		t.Errorf("scratch folder %s left behind: %v", filepath.Dir(p), err)
	}
}

func TestExitStatus(t *testing.T) {
	data := []byte("abc")
	objs := objects{"/k": data}
	tests := []struct {
		sh      string
		outcome hook.Outcome
		message []string
	}{
		{"exit 0", hook.OK, nil},
		{"echo 'try later' >&2; exit 75", hook.Retry, []string{"status 75", "try later"}},
		{
			"for i in $(seq 1 50); do echo line $i >&2; done; echo 'ffmpeg: invalid data' >&2; exit 3",
			hook.Fail,
			[]string{"exit status 3", "line 50\nffmpeg: invalid data"},
		},
		{"kill -9 $$", hook.Fail, []string{"killed"}},
	}
	for _, tt := range tests {
		h, _ := script(t, tt.sh, nil, objs)
		res := deliver(t, h, event("ev", hook.Created, "/k", data))
		if res.Outcome != tt.outcome {
			t.Errorf("%s: outcome %v, want %v", tt.sh, res.Outcome, tt.outcome)
		}
		for _, m := range tt.message {
			if !strings.Contains(res.Message, m) {
				t.Errorf("%s: message %q does not mention %q", tt.sh, res.Message, m)
			}
		}
		if strings.Contains(res.Message, "line 40\n") {
			t.Errorf("message quotes more than the last lines of stderr: %q", res.Message)
		}
	}
}

func TestTimeoutKillsGroup(t *testing.T) {
	data := []byte("abc")
	sh := `sleep 300 & echo $! > "$OUT/child"; echo $$ > "$OUT/self"; echo "about to hang" >&2; wait`
	h, out := script(t, sh, map[string]any{"timeout": "1s"}, objects{"/k": data})
	start := time.Now()
	res := deliver(t, h, event("ev", hook.Created, "/k", data))
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("timeout 1s took %v", d)
	}
	if res.Outcome != hook.Fail || !strings.Contains(res.Message, "timeout 1s") || !strings.Contains(res.Message, "about to hang") {
		t.Errorf("got %v %q", res.Outcome, res.Message)
	}
	for _, f := range []string{"self", "child"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		plugintest.WaitGone(t, pid, 5*time.Second)
	}
}

// TestLeftoversKilled: what a successful command leaves running in its
// group is killed too, and does not hold up the delivery.
func TestLeftoversKilled(t *testing.T) {
	data := []byte("abc")
	sh := `sleep 300 & echo $! > "$OUT/child"; exit 0`
	h, out := script(t, sh, nil, objects{"/k": data})
	start := time.Now()
	res := deliver(t, h, event("ev", hook.Created, "/k", data))
	if res.Outcome != hook.OK || time.Since(start) > 5*time.Second {
		t.Errorf("got %v %q after %v", res.Outcome, res.Message, time.Since(start))
	}
	b, err := os.ReadFile(filepath.Join(out, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	plugintest.WaitGone(t, pid, 5*time.Second)
}

func TestNoContent(t *testing.T) {
	data := []byte("abc")
	objs := objects{"/k": data}
	sh := `[ -z "${ATTACHD_CONTENT_PATH+set}" ] || { echo "content path $ATTACHD_CONTENT_PATH" >&2; exit 3; }; echo "annotation: type=$ATTACHD_EVENT_TYPE"`
	h, _ := script(t, sh, map[string]any{"content": "none"}, objs)
	res := deliver(t, h, event("ev", hook.Created, "/k", data))
	if res.Outcome != hook.OK || res.Annotations["type"] != hook.Created {
		t.Errorf("content none: %v %q %q", res.Outcome, res.Annotations, res.Message)
	}
	// A deleted object has no bytes, whatever the content mode.
	h, _ = script(t, sh, nil, objs)
	res = deliver(t, h, event("ev", hook.Deleted, "/gone", []byte("old")))
	if res.Outcome != hook.OK || res.Annotations["type"] != hook.Deleted {
		t.Errorf("deleted: %v %q %q", res.Outcome, res.Annotations, res.Message)
	}
}

// TestStaleVersion: an event for a version since replaced is skipped; the
// command does not run.
func TestStaleVersion(t *testing.T) {
	objs := objects{"/k": []byte("new")}
	for _, mode := range []string{"path", "pipe"} {
		h, out := script(t, `touch "$OUT/ran"`, map[string]any{"content": mode}, objs)
		res := deliver(t, h, event("ev", hook.Updated, "/k", []byte("old")))
		if res.Outcome != hook.OK || !strings.Contains(res.Message, "skipped") {
			t.Errorf("%s: %v %q", mode, res.Outcome, res.Message)
		}
		if _, err := os.Stat(filepath.Join(out, "ran")); err == nil {
			t.Errorf("%s: the command ran for a stale version", mode)
		}
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, `key "command": must be set`},
		{map[string]any{"command": []any{}}, `key "command": must be set`},
		{map[string]any{"command": "/bin/true"}, `command`},
		{map[string]any{"command": []any{"bin/true"}}, `key "command": "bin/true": want an absolute path`},
		{map[string]any{"command": []any{"/nonexistent/transcribe"}}, `key "command"`},
		{map[string]any{"command": []any{"no-such-tool-anywhere"}}, `key "command"`},
		{map[string]any{"command": []any{"/bin/true"}, "timeout": "5 minutes"}, `key "timeout"`},
		{map[string]any{"command": []any{"/bin/true"}, "content": "stream"}, `key "content": want "path", "pipe" or "none"`},
		{map[string]any{"command": []any{"/bin/true"}, "env": map[string]any{"ATTACHD_KEY": "x"}}, `key "env": variable ATTACHD_KEY`},
		{map[string]any{"command": []any{"/bin/true"}, "env": map[string]any{"1X": "x"}}, `key "env"`},
		{map[string]any{"command": []any{"/bin/true"}, "shell": true}, `unknown key "shell"`},
	}
	for _, tt := range tests {
		_, err := newManager(t, tt.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("config %v: error %v, want one containing %q", tt.cfg, err, tt.want)
		}
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestAnnotationWriter(t *testing.T) {
	var w annotationWriter
	var in bytes.Buffer
	in.WriteString("annotation: a=1\r\nnoise=2\nannotation: a=3\n")
	in.WriteString("annotation: long=" + strings.Repeat("é", 5000) + "\n")
	for i := range 70 {
		fmt.Fprintf(&in, "annotation: k%02d=%d\n", i, i)
	}
	in.WriteString("annotation: last=no newline")
	// Written in odd pieces, as a pipe delivers it.
	b := in.Bytes()
	for len(b) > 0 {
		n := min(len(b), 7)
		w.Write(b[:n])
		b = b[n:]
	}
	ann, msg := w.result()
	if len(ann) != maxAnnotations || ann["a"] != "3" || ann["k00"] != "0" || ann["k61"] != "61" || ann["k62"] != "" || ann["noise"] != "" {
		t.Errorf("annotations %d: a=%q k00=%q k61=%q", len(ann), ann["a"], ann["k00"], ann["k61"])
	}
	if v := ann["long"]; len(v) > maxValue || len(v) < maxValue-1 || !strings.HasPrefix(v, "éé") || !utf8Valid(v) {
		t.Errorf("long value: %d bytes", len(v))
	}
	if !strings.Contains(msg, "9 annotations beyond the first 64 dropped") || !strings.Contains(msg, "1 annotation values cut") {
		t.Errorf("message %q", msg)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "?") == s }

func TestTailWriter(t *testing.T) {
	var w tailWriter
	for i := range 5000 {
		fmt.Fprintf(&w, "line %d\n", i)
	}
	got := w.lines()
	lines := strings.Split(got, "\n")
	if len(lines) != tailLines || lines[0] != "line 4990" || lines[9] != "line 4999" {
		t.Errorf("tail %q", got)
	}
}

// TestCallCancelled: when attachd gives up on a call (its per-hook
// timeout, or shutdown), the command's group is killed and the delivery is
// an error, which attachd retries.
func TestCallCancelled(t *testing.T) {
	data := []byte("abc")
	sh := `sleep 300 & echo $! > "$OUT/child"; echo $$ > "$OUT/self"; wait`
	h, out := script(t, sh, nil, objects{"/k": data})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	res, err := h.Deliver(ctx, event("ev", hook.Created, "/k", data))
	if err == nil {
		t.Fatalf("Deliver after the call's deadline: %+v, want an error", res)
	}
	t.Logf("Deliver: %v", err)
	for _, f := range []string{"self", "child"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		plugintest.WaitGone(t, pid, 5*time.Second)
	}
}
