package e2e

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runAttachd runs the binary with args and stdin, and returns what it
// printed and its exit code. A process still running after limit is killed
// and fails the test.
func runAttachd(t *testing.T, stdin string, limit time.Duration, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(attachdBinary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("attachd %s still running after %v; killed it. Output:\n%s", strings.Join(args, " "), limit, out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// TestHardeningSIGHUPDoesNotKill: SIGHUP's default action is to exit; it
// must reload instead (TestReload), and be logged.
func TestHardeningSIGHUPDoesNotKill(t *testing.T) {
	s := startServer(t, serverOptions{})
	if err := s.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.proc.exited:
		t.Fatalf("attachd exited on SIGHUP: %v\n%s", s.proc.err, s.proc.out.String())
	case <-time.After(500 * time.Millisecond):
	}
	if err := s.waitReady(5 * time.Second); err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
	if out := s.proc.out.String(); !strings.Contains(out, "SIGHUP") || !strings.Contains(out, "configuration reloaded") {
		t.Errorf("SIGHUP was not logged:\n%s", out)
	}
}

// TestHardeningStrayArgumentsAreRefused: flags after a stray argument are
// not parsed, so `serve extra -l ADDR` would serve the defaults.
func TestHardeningStrayArgumentsAreRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "attachd.toml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	for _, args := range [][]string{
		{"serve", "extra-arg", "-l", freeAddr(t), "-d", data},
		{"check-config", "-c", cfg, "extra-arg"},
		{"hash-password", "extra-arg"},
		{"reindex", "-d", data, "extra-arg"},
		{"version", "extra-arg"},
		{"hooks", "status", "-d", data, "extra-arg"},
		{"hooks", "retry", "-d", data, "extra-arg"},
		{"plugins", "list", "-c", cfg, "extra-arg"},
	} {
		out, code := runAttachd(t, "pw\n", 5*time.Second, args...)
		if code == 0 || !strings.Contains(out, `unexpected argument "extra-arg"`) {
			t.Errorf("attachd %s: exit %d, output %q; want a non-zero exit naming the argument", strings.Join(args, " "), code, out)
		}
	}
	if _, err := os.Stat(data); err == nil {
		t.Errorf("a refused command created the data directory %s", data)
	}
}

// TestHardeningHashPasswordRefusesLongPasswords: bcrypt ignores bytes past
// 72, so such a hash would accept any suffix. The refusal must say what to
// do, not only what bcrypt said.
func TestHardeningHashPasswordRefusesLongPasswords(t *testing.T) {
	out, code := runAttachd(t, strings.Repeat("p", 73)+"\n", 10*time.Second, "hash-password")
	if code == 0 || !strings.Contains(out, "73 bytes") || !strings.Contains(out, "at most 72") {
		t.Errorf("73-byte password: exit %d, output %q; want a refusal naming its length and the 72-byte limit", code, out)
	}
	out, code = runAttachd(t, strings.Repeat("p", 72)+"\n", 10*time.Second, "hash-password")
	if code != 0 || !strings.HasPrefix(out, "$2") {
		t.Errorf("72-byte password: exit %d, output %q", code, out)
	}
}

// TestHardeningCheckConfigRedactsSecrets: check-config output is pasted
// into tickets and chats.
func TestHardeningCheckConfigRedactsSecrets(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "attachd.toml")
	toml := "[plugin.azblob]\nsha256 = \"" + strings.Repeat("ab", 32) + "\"\n" +
		"[plugin.azblob.config]\ncontainer = \"attachments\"\n" +
		"[plugin.azblob.secrets]\nconnection_string = \"AccountKey=hunter2\"\n"
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runAttachd(t, "", 10*time.Second, "check-config", "-c", cfg)
	if code != 0 || strings.Contains(out, "hunter2") || !strings.Contains(out, "REDACTED") || !strings.Contains(out, "attachments") {
		t.Errorf("check-config: exit %d, output:\n%s", code, out)
	}
}

// TestHardeningSlowUploadIsCut: a body that stops sending is cut with 408
// and leaves nothing in tmp/ or the store.
func TestHardeningSlowUploadIsCut(t *testing.T) {
	s := startServer(t, serverOptions{Config: &config{Extra: "[limits]\nbody_idle_timeout = \"500ms\"\n"}})
	head := wireRequest{Method: "PUT", URL: kazooBase + "/slow/vm.mp3", ContentType: "audio/mpeg"}.head(1000)
	body, stall := io.Pipe()
	defer stall.Close()
	go stall.Write([]byte("ID3")) // then nothing
	resp, err := s.exchange(t, head, body, 10*time.Second)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	r := readAll(t, resp)
	wantStatus(t, "stalled PUT", r, 408)
	deadline := time.Now().Add(5 * time.Second)
	for len(tmpEntries(t, s.DataDir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("tmp/ still holds %v", tmpEntries(t, s.DataDir))
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantStatus(t, "GET after the cut", s.get(t, "/slow/vm.mp3"), 404)
}
