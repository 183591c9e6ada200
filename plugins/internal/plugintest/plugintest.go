// Package plugintest runs real plugin binaries in tests: it builds one as
// plugins/build.sh does, installs it in a fresh pinned plugins folder and
// starts it through the real host.
package plugintest

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/attachd/attachd/plugins/hook"
	"github.com/attachd/attachd/plugins/host"
)

// Main builds plugins/<name> into a temporary folder, sets *binary to it,
// runs the tests and removes the build. Call it from TestMain.
func Main(m *testing.M, name string, binary *string) {
	dir, err := os.MkdirTemp("", "attachd-"+name+"-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*binary = filepath.Join(dir, host.FilePrefix+name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=test", "-o", *binary,
		"github.com/attachd/attachd/plugins/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build plugin %s: %v\n%s", name, err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Start installs binary as plugin name in a fresh plugins folder, pins it
// and starts it through the real host with p's config and secrets. The
// manager is closed when the test ends.
func Start(t *testing.T, binary, name string, p host.Plugin, content hook.ContentOpener) (*host.Manager, error) {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, host.FilePrefix+name)
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if p.SHA256, err = host.HashFile(dst); err != nil {
		t.Fatal(err)
	}
	m, err := host.New(host.Config{
		Dir:          dir,
		Plugins:      map[string]host.Plugin{name: p},
		Content:      content,
		Logger:       Logger(t),
		StartTimeout: 20 * time.Second,
		KillTimeout:  5 * time.Second,
	})
	if m != nil {
		t.Cleanup(func() { m.Close() })
	}
	return m, err
}

// Logger returns a logger that writes to t's output until t and the
// cleanups registered after this call (a host's Close) are done, and drops
// what comes after:
// go-plugin's goroutines may still log once a host is closed, and the
// testing package panics at a log line of a finished test.
func Logger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// Alive reports whether pid is a live (not zombie) process.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// WaitGone fails the test if pid is still alive after d.
func WaitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running %v later", pid, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
