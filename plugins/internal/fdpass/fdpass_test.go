//go:build linux

package fdpass

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func pair(t *testing.T) (*Sender, *Receiver) {
	t.Helper()
	s, child, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReceiver(child)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); r.Close() })
	return s, r
}

// TestSendTake passes a file and a pipe, the call for one arriving before
// its descriptor, and reads through both on the receiving side.
func TestSendTake(t *testing.T) {
	s, r := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	path := filepath.Join(t.TempDir(), "spooled")
	want := bytes.Repeat([]byte("attachd "), 100000)
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()

	fileTok, pipeTok := NewToken(), NewToken()
	got := make(chan *os.File, 1)
	go func() { // the call that names the pipe comes first
		g, err := r.Take(ctx, pipeTok)
		if err != nil {
			t.Error(err)
		}
		got <- g
	}()
	if err := s.Send(fileTok, f); err != nil {
		t.Fatal(err)
	}
	f.Close() // the receiver holds its own descriptor
	if err := s.Send(pipeTok, pw); err != nil {
		t.Fatal(err)
	}
	pw.Close()

	rf, err := r.Take(ctx, fileTok)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.NewSectionReader(rf, 0, int64(len(want))))
	rf.Close()
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("read %d bytes through the passed file (%v), want %d", len(b), err, len(want))
	}
	w := <-got
	if w == nil {
		t.FailNow()
	}
	go func() {
		w.Write([]byte("through the pipe"))
		w.Close()
	}()
	if b, err := io.ReadAll(pr); err != nil || string(b) != "through the pipe" {
		t.Fatalf("pipe: %q, %v", b, err)
	}
	// A token is good for one Take.
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if _, err := r.Take(short, fileTok); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Take of one token: %v, want a deadline error", err)
	}
}

// TestSenderGone: once the host's end closes, waiting calls fail at once.
func TestSenderGone(t *testing.T) {
	s, r := pair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := r.Take(context.Background(), NewToken())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	s.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Take succeeded with the sender gone")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Take still waiting after the sender closed")
	}
	if _, err := r.Take(context.Background(), NewToken()); err == nil {
		t.Fatal("Take after the sender closed succeeded")
	}
}

func TestTakeBadToken(t *testing.T) {
	_, r := pair(t)
	if _, err := r.Take(context.Background(), []byte("short")); err == nil {
		t.Fatal("Take with a 5-byte token succeeded")
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvVar, "")
	if r, err := FromEnv(); r != nil || err != nil {
		t.Fatalf("FromEnv without %s: %v, %v", EnvVar, r, err)
	}
	for _, v := range []string{"x", "1", "-4"} {
		t.Setenv(EnvVar, v)
		if _, err := FromEnv(); err == nil {
			t.Errorf("FromEnv with %s=%s: no error", EnvVar, v)
		}
	}
}
