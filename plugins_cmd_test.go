package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/attachd/attachd/plugins/host"
)

func runPlugins(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "attachd", Writer: &out, ErrWriter: &out, Commands: []*cli.Command{pluginsCommand()},
		ExitErrHandler: func(*cli.Context, error) {}}
	err := app.Run(append([]string{"attachd", "plugins"}, args...))
	return out.String(), err
}

func TestPluginsCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, host.FilePrefix+"example")
	build := exec.Command("go", "build", "-o", bin, "./plugins/example")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	sum, err := runPlugins(t, "hash", bin)
	if err != nil || len(strings.TrimSpace(sum)) != 64 {
		t.Fatalf("plugins hash: %q, %v", sum, err)
	}
	// A second, unpinned copy is found but not enabled.
	other, _ := os.ReadFile(bin)
	os.WriteFile(filepath.Join(dir, host.FilePrefix+"spare"), other, 0o755)
	cfg := filepath.Join(dir, "attachd.toml")
	os.WriteFile(cfg, []byte("[plugins]\ndir = \""+dir+"\"\n[plugin.example]\nsha256 = \""+strings.TrimSpace(sum)+"\"\n"), 0o600)
	out, err := runPlugins(t, "list", "--config", cfg)
	t.Logf("\n%s", out)
	if err != nil {
		t.Fatalf("plugins list: %v", err)
	}
	for _, want := range []string{"example  yes    yes     yes      yes      1.0.0", "spare    yes    no", "not enabled"} {
		if !strings.Contains(out, want) {
			t.Errorf("plugins list output lacks %q", want)
		}
	}

	os.WriteFile(cfg, []byte("[plugins]\ndir = \""+dir+"\"\n[plugin.example]\nsha256 = \""+strings.Repeat("0", 64)+"\"\n"), 0o600)
	out, err = runPlugins(t, "list", "--config", cfg)
	t.Logf("\n%s", out)
	if err == nil || !strings.Contains(out, "MISMATCH") || !strings.Contains(out, "has sha256 "+strings.TrimSpace(sum)) {
		t.Errorf("plugins list with a wrong pin: %v", err)
	}
}
