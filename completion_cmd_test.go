package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// complete runs script, a shell program that prints one completion a line,
// in shell with the completion script for that shell in $SCRIPT and this test
// binary, acting as attachd (TestMain), in $ATTACHD.
func complete(t *testing.T, shell, script string) []string {
	t.Helper()
	if _, err := exec.LookPath(shell); err != nil {
		t.Skipf("%s is not installed (test.sh installs it)", shell)
	}
	comp, err := runApp(t, "completion", shell)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "attachd."+shell)
	os.WriteFile(file, []byte(comp), 0o644)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shell, "-c", script)
	cmd.Env = append(os.Environ(), "ATTACHD_TEST_AS_CLI=1", "SCRIPT="+file, "ATTACHD="+exe, "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	return strings.Fields(string(out))
}

func wantCompletions(t *testing.T, line string, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%q completes to %q: lacks %q", line, got, w)
		}
	}
}

func TestBashCompletion(t *testing.T) {
	// COMP_WORDS and COMP_CWORD as bash sets them for the line typed.
	for _, tc := range []struct {
		line  string
		words string
		cword int
		want  []string
	}{
		{"attachd se", `"$ATTACHD" se`, 1, []string{"serve"}},
		{"attachd ", `"$ATTACHD" ""`, 1, []string{"serve", "check-config", "completion", "healthcheck", "plugins"}},
		{"attachd plugins ", `"$ATTACHD" plugins ""`, 2, []string{"list", "hash"}},
		{"attachd serve --co", `"$ATTACHD" serve --co`, 2, []string{"--config"}},
	} {
		got := complete(t, "bash", `. "$SCRIPT"; COMP_WORDS=(`+tc.words+`); COMP_CWORD=`+string(rune('0'+tc.cword))+`
_attachd; printf '%s\n' "${COMPREPLY[@]}"`)
		wantCompletions(t, tc.line, got, tc.want...)
		if tc.line == "attachd se" && slices.Contains(got, "plugins") {
			t.Errorf("%q completes to %q: not filtered by the word typed", tc.line, got)
		}
	}
	// The script registers itself for the command name.
	got := complete(t, "bash", `. "$SCRIPT"; complete -p attachd`)
	wantCompletions(t, "complete -p attachd", got, "_attachd")
}

func TestZshCompletion(t *testing.T) {
	// words and CURRENT as zsh's completion system sets them; compadd and
	// compdef stand in for the completion system's builtins.
	script := `compdef() { print -r -- "registered $*" }
compadd() { shift; print -rl -- "$@" }
. "$SCRIPT"
words=("$ATTACHD" plugins ""); CURRENT=3; _attachd
words=("$ATTACHD" serve --con); CURRENT=3; _attachd`
	got := complete(t, "zsh", script)
	wantCompletions(t, "attachd plugins / attachd serve --con", got, "registered", "list", "hash", "--config")
	if err := exec.Command("zsh", "-n", "-c", zshCompletion).Run(); err != nil {
		t.Errorf("zsh -n: %v", err)
	}
}

func TestFishCompletion(t *testing.T) {
	got := complete(t, "fish", `source "$SCRIPT"; complete -C"attachd "; complete -C"attachd serve --con"`)
	wantCompletions(t, "attachd / attachd serve --con", got, "serve", "completion", "healthcheck", "--config")
}

func TestCompletionRefusesOtherShells(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		out, err := runApp(t, args...)
		if err == nil || !strings.Contains(err.Error(), "bash, zsh or fish") || out != "" {
			t.Errorf("attachd %s: %v, output %q; want an error naming the shells", strings.Join(args, " "), err, out)
		}
	}
}
