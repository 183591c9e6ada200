package main

import (
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// stdio connects the command's stdin, stdout and stderr through pipes the
// plugin reads itself, rather than through exec.Cmd's copying goroutines:
// Wait then returns as soon as the command exits, even if a child it left
// behind still holds a pipe, and the plugin decides how long to keep
// reading.
type stdio struct {
	childEnds []*os.File // the command's ends, closed once it has started
	stdinW    *os.File
	stdoutR   *os.File
	stderrR   *os.File
	input     []byte
	wg        sync.WaitGroup // the copying goroutines
	stdout    io.Writer
	stderr    io.Writer
}

// startIO makes the pipes and sets cmd's Stdin, Stdout and Stderr.
func startIO(cmd *exec.Cmd, input []byte, stdout, stderr io.Writer) (*stdio, error) {
	s := &stdio{input: input, stdout: stdout, stderr: stderr}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	s.childEnds = []*os.File{inR, outW, errW}
	s.stdinW, s.stdoutR, s.stderrR = inW, outR, errR
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	return s, nil
}

// abort closes every pipe: the command did not start.
func (s *stdio) abort() {
	for _, f := range append(s.childEnds, s.stdinW, s.stdoutR, s.stderrR) {
		f.Close()
	}
}

// started closes the command's ends in the plugin and starts writing
// stdin and reading stdout and stderr.
func (s *stdio) started() {
	for _, f := range s.childEnds {
		f.Close()
	}
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		// A command that does not read its stdin makes this fail with
		// EPIPE, which is its business.
		s.stdinW.Write(s.input)
		s.stdinW.Close()
	}()
	for _, p := range []struct {
		r *os.File
		w io.Writer
	}{{s.stdoutR, s.stdout}, {s.stderrR, s.stderr}} {
		go func() {
			defer s.wg.Done()
			io.Copy(p.w, p.r)
		}()
	}
}

// finish waits up to d for stdout and stderr to end, then stops reading
// them and closes everything.
func (s *stdio) finish(d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		// The pipes are non-blocking, so a deadline interrupts the
		// blocked reads and write.
		now := time.Now()
		s.stdinW.SetWriteDeadline(now)
		s.stdoutR.SetReadDeadline(now)
		s.stderrR.SetReadDeadline(now)
		<-done
	}
	s.stdinW.Close()
	s.stdoutR.Close()
	s.stderrR.Close()
}
