// Package pluginbench is the benchmark bench/plugins.sh runs for each
// storage plugin: a 1 GiB upload and download through the real plugin
// binary, started by plugins/host, beside the same transfer done in process
// by the plugin's own backend type. Each plugin's bench_test.go calls Run.
//
// The upload is what attachd's store does with a spooled upload: it hands
// the open file to the backend's writer with blob.CopyFile, which passes a
// plugin the descriptor and gives an in-process writer 1 MiB Writes. The
// spool file is written before the clock starts.
package pluginbench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/plugins/sdk"
)

const benchChunk = 256 << 10 // the host's default chunk (pb.DefaultChunkSize): the size of each Write

// blobWriter is what both sdk.Storage and blob.Backend hand back from Create.
type blobWriter = blob.Writer

// side is one way to reach the backend: in-process or through the plugin.
type side struct {
	create func(ctx context.Context, name string, size int64) (blobWriter, error)
	open   func(ctx context.Context, name string) (io.ReadCloser, error)
	remove func(ctx context.Context, name string) error
	pid    int // the plugin process, 0 in-process
}

// Run is the benchmark of one storage plugin, on the side that
// ATTACHD_PLUGINBENCH names (see bench/plugins.sh): config and secrets are
// the plugin's tables, and inProcess returns the backend the plugin binary
// serves, configured with them.
func Run(t *testing.T, plugin string, cfg, secrets map[string]any, inProcess func(sdk.Config) (sdk.Storage, error)) {
	mode := os.Getenv("ATTACHD_PLUGINBENCH")
	if mode == "" {
		t.Skip("ATTACHD_PLUGINBENCH is not set: run bench/plugins.sh")
	}
	size := int64(1 << 30)
	if v := os.Getenv("ATTACHD_PLUGINBENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("ATTACHD_PLUGINBENCH_SIZE=%q: want a positive number of bytes", v)
		}
		size = n
	}
	var s side
	switch mode {
	case "inproc", "inproc-chunked":
		c, err := sdk.NewConfig(cfg, secrets)
		if err != nil {
			t.Fatal(err)
		}
		b, err := inProcess(c)
		if err != nil {
			t.Fatal(err)
		}
		s = side{
			create: func(ctx context.Context, name string, size int64) (blobWriter, error) {
				return b.Create(ctx, name, size)
			},
			open:   func(ctx context.Context, name string) (io.ReadCloser, error) { return b.Open(ctx, name, 0, -1) },
			remove: b.Delete,
		}
		if mode == "inproc-chunked" {
			s.open = func(ctx context.Context, name string) (io.ReadCloser, error) {
				r, err := b.Open(ctx, name, 0, -1)
				if err != nil {
					return nil, err
				}
				return struct {
					io.Reader
					io.Closer
				}{r, r}, nil
			}
		}
	case "plugin", "plugin-stream":
		env := Env(t, "ATTACHD_PLUGINBENCH_DIR", "ATTACHD_PLUGINBENCH_SHA256")
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		chunk := 0
		if v := os.Getenv("ATTACHD_PLUGINBENCH_CHUNK"); v != "" {
			var err error
			if chunk, err = strconv.Atoi(v); err != nil || chunk <= 0 {
				t.Fatalf("ATTACHD_PLUGINBENCH_CHUNK=%q: want a positive number of bytes", v)
			}
		}
		m, err := host.New(host.Config{
			Dir:        env[0],
			Plugins:    map[string]host.Plugin{plugin: {SHA256: env[1], Config: cfg, Secrets: secrets}},
			Logger:     log,
			ChunkSize:  chunk,
			StreamOnly: mode == "plugin-stream",
		})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		b, err := m.Backend(plugin)
		if err != nil {
			t.Fatal(err)
		}
		st := m.Status()
		if len(st) != 1 || st[0].State != host.Ready || st[0].PID <= 0 || st[0].FdPassing != (mode == "plugin") {
			t.Fatalf("plugin status: %+v", st)
		}
		s = side{
			create: func(ctx context.Context, name string, size int64) (blobWriter, error) {
				return b.Create(ctx, name, size)
			},
			open:   func(ctx context.Context, name string) (io.ReadCloser, error) { return b.Open(ctx, name, 0, -1) },
			remove: b.Delete,
			pid:    st[0].PID,
		}
	default:
		t.Fatalf("ATTACHD_PLUGINBENCH=%q: want inproc, plugin, plugin-stream or inproc-chunked", mode)
	}
	runBench(t, plugin, mode, size, s)
}

func runBench(t *testing.T, plugin, mode string, size int64, s side) {
	ctx := context.Background()
	name := "pluginbench/" + mode + "-" + strings.ToLower(rand.Text()[:10])
	defer func() {
		if err := s.remove(ctx, name); err != nil {
			t.Errorf("delete %s: %v", name, err)
		}
	}()
	res := []string{"plugin=" + plugin, "mode=" + mode, fmt.Sprintf("bytes=%d", size)}
	add := func(k string, v any) { res = append(res, fmt.Sprintf("%s=%v", k, v)) }

	// Upload: a spooled file of size bytes, handed over as the store does.
	f, sent := spoolFile(t, size)
	resetPeaks(t, s.pid, "up", add)
	buf := make([]byte, benchChunk)
	start := time.Now()
	w, err := s.create(ctx, name, size)
	if err != nil {
		t.Fatal(err)
	}
	n, err := blob.CopyFile(w, f)
	if err != nil {
		w.Abort()
		t.Fatalf("upload after %d bytes: %v", n, err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	up := time.Since(start)
	readPeaks(t, s.pid, "up", add)

	// Download: read back whole, hashed as it arrives.
	resetPeaks(t, s.pid, "down", add)
	h := sha256.New()
	start = time.Now()
	r, err := s.open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	n, err = io.CopyBuffer(h, r, buf)
	if err != nil {
		t.Fatalf("download after %d bytes: %v", n, err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("close reader: %v", err)
	}
	down := time.Since(start)
	readPeaks(t, s.pid, "down", add)
	got := hex.EncodeToString(h.Sum(nil))

	if n != size || got != sent {
		t.Fatalf("downloaded %d bytes with SHA-256 %s, uploaded %d with %s", n, got, size, sent)
	}
	add("up_s", fmt.Sprintf("%.3f", up.Seconds()))
	add("down_s", fmt.Sprintf("%.3f", down.Seconds()))
	add("up_mbs", fmt.Sprintf("%.1f", float64(size)/up.Seconds()/1e6))
	add("down_mbs", fmt.Sprintf("%.1f", float64(size)/down.Seconds()/1e6))
	add("sha256", got)
	fmt.Println("PLUGINBENCH " + strings.Join(res, " "))
}

// spoolFile writes size generated bytes to a file in
// ATTACHD_PLUGINBENCH_SPOOL (default the test's temporary folder), as
// attachd's spool holds an upload, and returns it open with their SHA-256.
func spoolFile(t *testing.T, size int64) (*os.File, string) {
	dir := os.Getenv("ATTACHD_PLUGINBENCH_SPOOL")
	if dir == "" {
		dir = t.TempDir()
	}
	f, err := os.CreateTemp(dir, "pluginbench-spool-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); os.Remove(f.Name()) })
	src := newGen(size)
	if _, err := io.CopyBuffer(f, struct{ io.Reader }{src}, make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	return f, hex.EncodeToString(src.h.Sum(nil))
}

// cpuTicks returns the user plus system CPU time of a process, in clock
// ticks (1/100 s on Linux).
func cpuTicks(t *testing.T, pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which ends with the last ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%s/stat: %q", pid, b)
	}
	return u + s
}

// resetPeaks settles this process's heap and resets the peak RSS (VmHWM) of
// this process and of the plugin's, recording the RSS each starts from.
func resetPeaks(t *testing.T, pid int, phase string, add func(string, any)) {
	runtime.GC()
	debug.FreeOSMemory()
	for _, p := range []struct {
		who string
		pid string
	}{{"host", "self"}, {"plugin", strconv.Itoa(pid)}} {
		if p.who == "plugin" && pid == 0 {
			continue
		}
		if err := os.WriteFile("/proc/"+p.pid+"/clear_refs", []byte("5"), 0); err != nil {
			t.Fatalf("reset peak RSS of %s: %v", p.who, err)
		}
		add(p.who+"_"+phase+"_base_kib", procStatus(t, p.pid, "VmRSS"))
		cpuStart[p.who] = cpuTicks(t, p.pid)
	}
}

// cpuStart holds each process's CPU ticks at the start of a phase.
var cpuStart = map[string]int64{}

// readPeaks records the peak RSS of this process and the plugin's since
// resetPeaks.
func readPeaks(t *testing.T, pid int, phase string, add func(string, any)) {
	add("host_"+phase+"_hwm_kib", procStatus(t, "self", "VmHWM"))
	add("host_"+phase+"_cpu_s", fmt.Sprintf("%.2f", float64(cpuTicks(t, "self")-cpuStart["host"])/100))
	if pid != 0 {
		add("plugin_"+phase+"_hwm_kib", procStatus(t, strconv.Itoa(pid), "VmHWM"))
		add("plugin_"+phase+"_cpu_s", fmt.Sprintf("%.2f", float64(cpuTicks(t, strconv.Itoa(pid))-cpuStart["plugin"])/100))
	}
}

// procStatus returns a "kB" field of /proc/PID/status, in KiB.
func procStatus(t *testing.T, pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("/proc/%s/status: %s: %v", pid, line, err)
			}
			return n
		}
	}
	t.Fatalf("/proc/%s/status has no %s", pid, field)
	return 0
}

// gen produces n bytes that neither compress nor repeat block for block: a
// 4 MiB random block whose first 8 bytes are the block's index. It hashes
// what it hands out.
type gen struct {
	left  int64
	block []byte
	off   int
	index uint64
	h     interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newGen(n int64) *gen {
	g := &gen{left: n, block: make([]byte, 4<<20), h: sha256.New()}
	r := mrand.NewChaCha8([32]byte{'a', 't', 't', 'a', 'c', 'h', 'd'})
	r.Read(g.block)
	g.next()
	return g
}

func (g *gen) next() {
	for i := range 8 {
		g.block[i] = byte(g.index >> (8 * i))
	}
	g.index++
	g.off = 0
}

func (g *gen) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if g.off == len(g.block) {
		g.next()
	}
	k := min(len(p), len(g.block)-g.off)
	if int64(k) > g.left {
		k = int(g.left)
	}
	copy(p, g.block[g.off:g.off+k])
	g.h.Write(p[:k])
	g.off += k
	g.left -= int64(k)
	return k, nil
}

// Env returns the named environment variables; the benchmark needs them
// all.
func Env(t *testing.T, names ...string) []string {
	var vals []string
	for _, n := range names {
		v := os.Getenv(n)
		if v == "" {
			t.Fatalf("%s is not set: run bench/plugins.sh", n)
		}
		vals = append(vals, v)
	}
	return vals
}
