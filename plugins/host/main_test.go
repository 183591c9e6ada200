package host_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/attachd/attachd/plugins/host"
)

// binDir holds the real plugin binaries, built once by TestMain exactly as
// plugins/build.sh builds them.
var binDir string

func TestMain(m *testing.M) {
	// Run as a fault plugin: the test binary copied under a plugin's name.
	if name, ok := strings.CutPrefix(filepath.Base(os.Args[0]), host.FilePrefix); ok {
		runFaultPlugin(name)
		return
	}
	dir, err := os.MkdirTemp("", "attachd-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var buildMu sync.Mutex

// buildPlugin builds ./plugins/<name> into binDir once and returns its path.
func buildPlugin(t *testing.T, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out := filepath.Join(binDir, host.FilePrefix+name)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "github.com/attachd/attachd/plugins/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build plugin %s: %v\n%s", name, err, b)
	}
	return out
}

// install copies the file at src into a fresh plugins dir as plugin name
// and returns the dir and the [plugin.name] table pinning it.
func install(t *testing.T, src, name string, cfg map[string]any) (string, host.Plugin) {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, host.FilePrefix+name)
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := host.HashFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return dir, host.Plugin{SHA256: sum, Config: cfg}
}
