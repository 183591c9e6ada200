package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestMain lets a test run this test binary as attachd itself (the shell
// completion scripts call the program they complete).
func TestMain(m *testing.M) {
	if os.Getenv("ATTACHD_TEST_AS_CLI") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runApp runs the whole CLI in this process and returns what it printed.
func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	a := app()
	a.Writer, a.ErrWriter = &out, &out
	a.ExitErrHandler = func(*cli.Context, error) {}
	err := a.Run(append([]string{"attachd"}, args...))
	return out.String(), err
}

func TestUnknownCommandSuggests(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"serv", `"serv" is not a command. Did you mean "serve"?`},
		{"chek-config", `Did you mean "check-config"?`},
		{"plugins lst", `"lst" is not a command. Did you mean "list"?`},
		{"hooks retyr", `Did you mean "retry"?`},
	} {
		out, err := runApp(t, strings.Fields(tc.args)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("attachd %s: %v (output %q); want an error with %q", tc.args, err, out, tc.want)
		}
	}
	// No command at all, or a group without its command: help, not an error.
	for _, args := range []string{"", "plugins"} {
		out, err := runApp(t, strings.Fields(args)...)
		if err != nil || !strings.Contains(out, "COMMANDS:") {
			t.Errorf("attachd %s: %v, output %q; want the help", args, err, out)
		}
	}
}

func TestFlagSuggestion(t *testing.T) {
	out, err := runApp(t, "serve", "--confg", "x.toml")
	if err == nil || !strings.Contains(out, `Did you mean "--config"?`) {
		t.Errorf("serve --confg: %v, output %q", err, out)
	}
}

func TestFormatVersion(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
		bi.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
		return bi
	}
	for _, tc := range []struct {
		name, version, commit string
		bi                    *debug.BuildInfo
		want                  string
	}{
		{"nothing known", "", "", nil, "devel"},
		{"work tree", "", "", vcs("false"), "devel (commit 0123456789ab)"},
		{"modified work tree", "", "", vcs("true"), "devel (commit 0123456789ab, modified)"},
		{"go install @version", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"-ldflags", "1.4.0", "fedcba9876543210", nil, "1.4.0 (commit fedcba987654)"},
		{"-ldflags, dirty tree", "1.4.0-3-gfedcba9", "fedcba9876543210-dirty", nil, "1.4.0-3-gfedcba9 (commit fedcba987654, modified)"},
		{"-ldflags win over build info", "1.4.0", "fedcba9876543210", vcs("false"), "1.4.0 (commit fedcba987654)"},
	} {
		if got := formatVersion(tc.version, tc.commit, tc.bi); got != tc.want {
			t.Errorf("%s: formatVersion = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	want := "attachd version " + buildVersion() + "\n"
	if out, err := runApp(t, "--version"); err != nil || out != want {
		t.Errorf("--version: %q, %v; want %q", out, err, want)
	}
}

func TestManPage(t *testing.T) {
	out, err := runApp(t, "man")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "\n.TH attachd 8\n") {
		t.Errorf("man page lacks the title .TH attachd 8:\n%s", out[:min(len(out), 200)])
	}
	for _, want := range []string{".SH serve\n", ".SH check-config\n", ".SH completion\n", ".SH healthcheck\n", "--data-dir, -d"} {
		if !strings.Contains(out, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	// man renders it without a warning (man-db, installed by test.sh).
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man is not installed (test.sh installs man-db)")
	}
	page := filepath.Join(t.TempDir(), "attachd.8")
	os.WriteFile(page, []byte(out), 0o644)
	cmd := exec.Command("man", "--warnings", "-l", page)
	cmd.Env = append(os.Environ(), "MANPAGER=cat", "MANWIDTH=80", "LC_ALL=C.UTF-8")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	text, err := cmd.Output()
	if err != nil || stderr.Len() > 0 || !strings.Contains(string(text), "COMMANDS") || !strings.Contains(string(text), "healthcheck") {
		t.Errorf("man -l: %v\nstderr: %q\n%s", err, stderr.Bytes(), text)
	}
}

func TestManPageHidesItself(t *testing.T) {
	out, err := runApp(t, "man")
	if err != nil || strings.Contains(out, ".SH man\n") {
		t.Errorf("the hidden man command is in the man page (%v)", err)
	}
}
