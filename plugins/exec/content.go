package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/attachd/attachd/plugins/sdk"
)

// contentName is the name of the content file or pipe in the scratch
// folder: "content" plus the key's extension, for tools that go by it.
func contentName(key string) string {
	ext := path.Ext(key)
	if len(ext) < 2 || len(ext) > 16 {
		return "content"
	}
	for _, r := range ext[1:] {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return "content"
		}
	}
	return "content" + ext
}

// openContent starts streaming the event's object from attachd. ok is
// false when there is nothing to run: res then says why.
func (r *run) openContent(ctx context.Context) (src io.ReadCloser, res sdk.Result, ok bool) {
	o := r.ev.Object
	src, err := sdk.Content(ctx, o.Key, o.SHA256)
	if errors.Is(err, sdk.ErrNotFound) {
		return nil, skipped(err), false
	}
	if err != nil {
		return nil, sdk.Result{Outcome: sdk.Retry, Message: fmt.Sprintf("read %s from attachd: %v", o.Key, err)}, false
	}
	return src, sdk.Result{}, true
}

// contentFile copies the object into a private file for the command, and
// checks it on the way. ok is false when the command must not run.
func (r *run) contentFile(ctx context.Context) (res sdk.Result, ok bool) {
	src, res, ok := r.openContent(ctx)
	if !ok {
		return res, false
	}
	defer src.Close()
	p := filepath.Join(r.work, contentName(r.ev.Object.Key))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return sdk.Result{Outcome: sdk.Retry, Message: fmt.Sprintf("content file: %v", err)}, false
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = verify(r.ev.Object, n, h)
	}
	if err != nil {
		return sdk.Result{Outcome: sdk.Retry, Message: fmt.Sprintf("copy %s into %s: %v", r.ev.Object.Key, p, err)}, false
	}
	r.contentPath = p
	return sdk.Result{}, true
}

// contentPipe makes the FIFO the command reads the object from; the
// feeder fills it while the command runs.
func (r *run) contentPipe(ctx context.Context) (res sdk.Result, ok bool) {
	// The stream ends with the command, even if attachd is slow to send.
	ctx, cancel := context.WithCancel(ctx)
	src, res, ok := r.openContent(ctx)
	if !ok {
		cancel()
		return res, false
	}
	p := filepath.Join(r.work, contentName(r.ev.Object.Key))
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		cancel()
		src.Close()
		return sdk.Result{Outcome: sdk.Retry, Message: fmt.Sprintf("content pipe %s: %v", p, err)}, false
	}
	r.contentPath = p
	r.feed = &feeder{path: p, src: src, cancel: cancel, obj: r.ev.Object, stopped: make(chan struct{})}
	return sdk.Result{}, true
}

// verify checks that the n bytes hashed into h are the object's.
func verify(o sdk.Object, n int64, h hash.Hash) error {
	if n != o.Size {
		return fmt.Errorf("got %d bytes, want %d", n, o.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); o.SHA256 != "" && got != o.SHA256 {
		return fmt.Errorf("got sha256 %s, want %s", got, o.SHA256)
	}
	return nil
}

// feeder writes the object into the FIFO while the command runs. A
// command may read all of it, part of it, or never open the pipe at all;
// only a failure on attachd's side is an error.
type feeder struct {
	path   string
	src    io.ReadCloser
	cancel context.CancelFunc // ends src's stream
	obj    sdk.Object

	stopOnce sync.Once
	stopped  chan struct{} // closed once the command is gone
}

// stop tells run that the command is gone: nobody will read any more.
func (f *feeder) stop() {
	f.stopOnce.Do(func() {
		close(f.stopped)
		f.cancel()
	})
}

// close releases the content stream; call it once run has returned, or
// when it never ran.
func (f *feeder) close() {
	f.stop()
	f.src.Close()
}

// gone reports whether the command is gone.
func (f *feeder) gone() bool {
	select {
	case <-f.stopped:
		return true
	default:
		return false
	}
}

// run feeds the pipe until the content ends, the command stops reading,
// or ctx ends.
func (f *feeder) run(ctx context.Context) error {
	w, err := f.open(ctx)
	if w == nil {
		return err
	}
	defer w.Close()
	// Unblock a write the command will never read: the pipe is
	// non-blocking, so a deadline interrupts it.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-f.stopped:
		case <-ctx.Done():
		case <-done:
			return
		}
		w.SetWriteDeadline(time.Now())
	}()

	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, rerr := f.src.Read(buf)
		if m > 0 {
			h.Write(buf[:m])
			n += int64(m)
			if _, err := w.Write(buf[:m]); err != nil {
				if errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrDeadlineExceeded) || f.gone() {
					return nil // the command stopped reading, or is gone
				}
				return fmt.Errorf("write content pipe: %w", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if f.gone() {
				return nil // stopped mid-stream: nobody wants the rest
			}
			return fmt.Errorf("read %s from attachd: %w", f.obj.Key, rerr)
		}
	}
	if err := verify(f.obj, n, h); err != nil {
		return fmt.Errorf("%s: %w", f.obj.Key, err)
	}
	return nil
}

// open opens the FIFO for writing once the command has opened it for
// reading. It polls: a blocking open would hang for good if the command
// never opens the pipe. It returns nil, nil if the command is gone first.
func (f *feeder) open(ctx context.Context) (*os.File, error) {
	delay := time.Millisecond
	for {
		w, err := os.OpenFile(f.path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			return w, nil
		}
		if !errors.Is(err, syscall.ENXIO) { // ENXIO: no reader yet
			return nil, fmt.Errorf("open content pipe: %w", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-f.stopped:
			t.Stop()
			return nil, nil
		case <-ctx.Done():
			t.Stop()
			return nil, nil
		case <-t.C:
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}
