package host_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/plugins/hook"
	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/plugins/internal/fdpass"
	"github.com/attachd/attachd/plugins/internal/plugintest"
	"github.com/attachd/attachd/plugins/sdk"
)

// runFaultPlugin is main for the test binary run as attachd-plugin-<name>:
// the name says which fault to show.
func runFaultPlugin(name string) {
	switch {
	case name == "stdout":
		fmt.Println("hello from a plugin that prints")
		sdk.ServeStorage(name, "1", &faultStorage{})
	case name == "crashstart":
		fmt.Fprintln(os.Stderr, "cannot start: missing something")
		os.Exit(3)
	case strings.HasPrefix(name, "crash"): // crashN: exits on the Nth Stat
		n, _ := strconv.Atoi(strings.TrimPrefix(name, "crash"))
		sdk.ServeStorage(name, "1", &faultStorage{crashAt: int64(n)})
	case name == "hang":
		sdk.ServeStorage(name, "1", &faultStorage{})
		time.Sleep(time.Hour) // never exits by itself after shutdown
	case name == "wrongname":
		sdk.ServeStorage("somethingelse", "1", &faultStorage{})
	case name == "strict":
		sdk.ServeStorage(name, "1", &strictStorage{})
	case name == "spawn":
		// A child in the plugin's process group, as a transcriber's ffmpeg.
		cmd := exec.Command("/bin/sleep", "1000")
		if err := cmd.Start(); err != nil {
			os.Exit(4)
		}
		sdk.ServeStorage(name, "child-"+strconv.Itoa(cmd.Process.Pid), &faultStorage{})
	case name == "hook":
		sdk.ServeHook(name, "1", contentHook{})
	case name == "memory":
		sdk.ServeStorage(name, "1", &memStorage{})
	case name == "memstream": // a plugin built before descriptor passing
		os.Unsetenv(fdpass.EnvVar)
		sdk.ServeStorage(name, "1", &memStorage{})
	case name == "midcrash":
		sdk.ServeStorage(name, "1", &memStorage{crashAfter: 1 << 20})
	default:
		fmt.Fprintln(os.Stderr, "unknown fault plugin", name)
		os.Exit(2)
	}
}

// faultStorage stores nothing; its Stat counts calls and can crash.
type faultStorage struct {
	calls   atomic.Int64
	crashAt int64
}

func (f *faultStorage) Stat(ctx context.Context, name string) (sdk.BlobInfo, error) {
	if n := f.calls.Add(1); f.crashAt > 0 && n >= f.crashAt {
		os.Exit(7)
	}
	return sdk.BlobInfo{}, sdk.ErrNotFound
}
func (f *faultStorage) Open(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, sdk.ErrNotFound
}
func (f *faultStorage) Create(context.Context, string, int64) (sdk.BlobWriter, error) {
	return nil, errors.New("read-only")
}
func (f *faultStorage) Delete(context.Context, string) error { return nil }
func (f *faultStorage) List(context.Context, string, string, int) ([]sdk.BlobInfo, string, error) {
	return nil, "", nil
}

// strictStorage needs a "bucket" key.
type strictStorage struct{ faultStorage }

func (s *strictStorage) Configure(ctx context.Context, c sdk.Config) error {
	var cfg struct {
		Bucket string `json:"bucket"`
	}
	if err := c.Decode(&cfg); err != nil {
		return err
	}
	if cfg.Bucket == "" {
		return sdk.ConfigError("bucket", "must be set")
	}
	return nil
}

// contentHook reads the object's bytes from attachd and answers with their
// SHA-256, or Fail when attachd says the version is gone.
type contentHook struct{}

func (contentHook) Deliver(ctx context.Context, ev sdk.Event) (sdk.Result, error) {
	r, err := sdk.Content(ctx, ev.Object.Key, ev.Object.SHA256)
	if errors.Is(err, sdk.ErrNotFound) {
		return sdk.Result{Outcome: sdk.Fail, Message: err.Error()}, nil
	}
	if err != nil {
		return sdk.Result{}, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Outcome: sdk.OK, Annotations: map[string]string{
		"sha256": hex.EncodeToString(h.Sum(nil)),
		"size":   strconv.FormatInt(n, 10),
		"event":  ev.EventID,
	}}, nil
}

// fault installs the test binary as plugin name and returns a Config for it.
func fault(t *testing.T, name string) host.Config {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, pin := install(t, self, name, nil)
	return host.Config{
		Dir:          dir,
		Plugins:      map[string]host.Plugin{name: pin},
		Logger:       plugintest.Logger(t),
		StartTimeout: 10 * time.Second,
		KillTimeout:  5 * time.Second,
		Backoff:      50 * time.Millisecond,
		MaxBackoff:   200 * time.Millisecond,
	}
}

// newManager runs host.New and fails the test unless it returns within d.
func newManager(t *testing.T, cfg host.Config, d time.Duration) (*host.Manager, error) {
	t.Helper()
	type res struct {
		m   *host.Manager
		err error
	}
	ch := make(chan res, 1)
	start := time.Now()
	go func() {
		m, err := host.New(cfg)
		ch <- res{m, err}
	}()
	select {
	case r := <-ch:
		t.Logf("host.New took %v", time.Since(start).Round(time.Millisecond))
		if r.m != nil {
			t.Cleanup(func() { r.m.Close() })
		}
		return r.m, r.err
	case <-time.After(d):
		t.Fatalf("host.New hung for %v", d)
		return nil, nil
	}
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", parts)
	}
	t.Logf("error: %v", err)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestStdoutBeforeServe(t *testing.T) {
	_, err := newManager(t, fault(t, "stdout"), 20*time.Second)
	wantErr(t, err, "plugin stdout", `wrote "hello from a plugin that prints" to stdout`, "plugins must log to stderr")
}

func TestCrashAtStart(t *testing.T) {
	_, err := newManager(t, fault(t, "crashstart"), 20*time.Second)
	wantErr(t, err, "plugin crashstart", "exited before the handshake", "cannot start: missing something")
}

func TestWrongHash(t *testing.T) {
	cfg := fault(t, "crash5")
	pin := cfg.Plugins["crash5"]
	actual := pin.SHA256
	pin.SHA256 = strings.Repeat("ab", 32)
	cfg.Plugins["crash5"] = pin
	_, err := newManager(t, cfg, 20*time.Second)
	wantErr(t, err, "plugin crash5", "has sha256 "+actual, "pins "+pin.SHA256, `set sha256 = "`+actual+`"`)
}

func TestWrongName(t *testing.T) {
	_, err := newManager(t, fault(t, "wrongname"), 20*time.Second)
	wantErr(t, err, "plugin wrongname", `says it is "somethingelse"`)
}

func TestBadConfig(t *testing.T) {
	cfg := fault(t, "strict")
	_, err := newManager(t, cfg, 20*time.Second)
	wantErr(t, err, "[plugin.strict]", `key "bucket": must be set`)

	cfg = fault(t, "strict")
	pin := cfg.Plugins["strict"]
	pin.Config = map[string]any{"bucket": "b", "buckett": "typo"}
	cfg.Plugins["strict"] = pin
	_, err = newManager(t, cfg, 20*time.Second)
	wantErr(t, err, `config: unknown key "buckett"`)

	cfg = fault(t, "strict")
	pin = cfg.Plugins["strict"]
	pin.Config = map[string]any{"bucket": 12}
	cfg.Plugins["strict"] = pin
	_, err = newManager(t, cfg, 20*time.Second)
	wantErr(t, err, `key "bucket": want a string, got number`)
}

func TestNotExecutableOrOutside(t *testing.T) {
	cfg := fault(t, "crash5")
	path := cfg.Dir + "/" + host.FilePrefix + "crash5"
	os.Chmod(path, 0o644)
	_, err := newManager(t, cfg, 20*time.Second)
	wantErr(t, err, "not executable")

	os.Chmod(path, 0o777)
	_, err = newManager(t, cfg, 20*time.Second)
	wantErr(t, err, "writable by group or others")

	os.Chmod(path, 0o755)
	other := t.TempDir()
	os.Rename(path, other+"/real")
	os.Symlink(other+"/real", path)
	_, err = newManager(t, cfg, 20*time.Second)
	wantErr(t, err, "outside the plugins dir")
}

func status(m *host.Manager) host.PluginStatus { return m.Status()[0] }

func waitState(t *testing.T, m *host.Manager, want host.State, d time.Duration) host.PluginStatus {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := status(m)
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin is %s (%s), want %s", st.State, st.LastError, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRestart waits for the plugin to be ready again in a process other than pid.
func waitRestart(t *testing.T, m *host.Manager, pid int, d time.Duration) host.PluginStatus {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := status(m)
		if st.State == host.Ready && st.PID != pid {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin is %s (pid %d, %s), want ready again", st.State, st.PID, st.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCrashRestartDisable(t *testing.T) {
	cfg := fault(t, "crash3")
	cfg.MaxCrashes = 3
	m, err := newManager(t, cfg, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Backend("crash3")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := status(m)
	for crash := 1; crash <= 3; crash++ {
		st := waitState(t, m, host.Ready, 10*time.Second)
		for range 2 {
			if _, err := b.Stat(ctx, "x"); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Stat before crash %d: %v", crash, err)
			}
		}
		// The third call kills the plugin mid-call.
		_, err := b.Stat(ctx, "x")
		if !errors.Is(err, host.ErrUnavailable) {
			t.Fatalf("Stat during crash %d: got %v, want ErrUnavailable", crash, err)
		}
		plugintest.WaitGone(t, st.PID, 5*time.Second)
		if crash < 3 {
			st = waitRestart(t, m, st.PID, 10*time.Second)
			if st.PID == first.PID || st.Restarts != crash {
				t.Fatalf("after crash %d: %+v", crash, st)
			}
		}
	}
	st := waitState(t, m, host.Disabled, 10*time.Second)
	if !strings.Contains(st.LastError, "disabled after 3 crashes") {
		t.Errorf("LastError = %q", st.LastError)
	}
	if _, err := b.Stat(ctx, "x"); !errors.Is(err, host.ErrUnavailable) || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("Stat on a disabled plugin: %v", err)
	}
}

func TestHangOnShutdown(t *testing.T) {
	cfg := fault(t, "hang")
	cfg.KillTimeout = 10 * time.Second
	m, err := newManager(t, cfg, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pid := status(m).PID
	start := time.Now()
	m.Close()
	// go-plugin waits 2 s for a graceful exit, then kills.
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Close took %v", d)
	}
	plugintest.WaitGone(t, pid, 5*time.Second)
	if st := status(m); st.State != host.Stopped {
		t.Errorf("after Close: %+v", st)
	}
}

func TestNoLeftoverProcesses(t *testing.T) {
	m, err := newManager(t, fault(t, "spawn"), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st := status(m)
	child, err := strconv.Atoi(strings.TrimPrefix(st.Version, "child-"))
	if err != nil || !plugintest.Alive(child) || !plugintest.Alive(st.PID) {
		t.Fatalf("plugin %d with child %q not running", st.PID, st.Version)
	}
	m.Close()
	plugintest.WaitGone(t, st.PID, 5*time.Second)
	plugintest.WaitGone(t, child, 5*time.Second)
}

func TestHookContent(t *testing.T) {
	data := bytes.Repeat([]byte("voicemail "), 100_000) // 1 MB: several chunks
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	cfg := fault(t, "hook")
	cfg.Content = func(ctx context.Context, key, sha string) (io.ReadCloser, error) {
		if key != "/a/vm.mp3" || sha != want {
			return nil, blob.ErrNotFound
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	m, err := newManager(t, cfg, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.Hook("hook")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Backend("hook"); err == nil {
		t.Error("a hook plugin served as a storage backend")
	}
	ev := hook.Event{Schema: hook.SchemaVersion, EventID: "ev1", Type: hook.Created, Attempt: 1,
		Object: hook.Object{Key: "/a/vm.mp3", Size: int64(len(data)), SHA256: want}}
	res, err := h.Deliver(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != hook.OK || res.Annotations["sha256"] != want || res.Annotations["size"] != strconv.Itoa(len(data)) || res.Annotations["event"] != "ev1" {
		t.Errorf("Deliver: %+v", res)
	}
	ev.Object.SHA256 = strings.Repeat("0", 64) // a version since replaced
	res, err = h.Deliver(context.Background(), ev)
	if err != nil || res.Outcome != hook.Fail || !strings.Contains(res.Message, "not found") {
		t.Errorf("Deliver of a stale version: %+v, %v", res, err)
	}
}
