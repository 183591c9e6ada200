//go:build unix

// Package fdpass hands open file descriptors from attachd to a plugin on the
// same host (SCM_RIGHTS over a Unix socket pair), so that bulk bytes
// skip the gRPC stream: the plugin reads an upload from the very file the host
// opened, and writes a download into a pipe the host reads. The plugin needs
// no access to attachd's data folder by path.
//
// The host creates the pair with Pair, gives the child's end to the plugin as
// an inherited descriptor, and sends each descriptor with a random token; the
// gRPC call that uses it carries the same token, and the plugin's Receiver
// matches the two, whichever arrives first.
package fdpass

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// EnvVar names the environment variable through which the host tells the
// plugin the number of its end of the socket pair.
const EnvVar = "ATTACHD_PLUGIN_FD_SOCKET"

// TokenSize is the length of a token in bytes.
const TokenSize = 16

// sendTimeout bounds one Send: the plugin reads its socket all the time, so a
// send that cannot complete means the plugin is stuck or gone.
const sendTimeout = 10 * time.Second

// Sender is the host's end of the socket pair.
type Sender struct{ c *net.UnixConn }

// Pair returns a connected socket pair: the host's end, and the plugin's end
// as a file to pass to the plugin process (exec.Cmd.ExtraFiles). The caller
// closes child once the plugin has started.
func Pair() (*Sender, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, sockType, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("fd socket pair: %w", err)
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	hf := os.NewFile(uintptr(fds[0]), "attachd-fd-socket")
	defer hf.Close()
	c, err := net.FileConn(hf)
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, fmt.Errorf("fd socket pair: %w", err)
	}
	return &Sender{c: c.(*net.UnixConn)}, os.NewFile(uintptr(fds[1]), "attachd-plugin-fd-socket"), nil
}

// NewToken returns a fresh random token.
func NewToken() []byte {
	t := make([]byte, TokenSize)
	rand.Read(t)
	return t
}

// Send passes f to the plugin under token. The plugin gets its own
// descriptor for the same open file: the caller may close f at once.
func (s *Sender) Send(token []byte, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("pass descriptor: %w", err)
	}
	var werr error
	err = rc.Control(func(fd uintptr) {
		s.c.SetWriteDeadline(time.Now().Add(sendTimeout))
		_, _, werr = s.c.WriteMsgUnix(token, syscall.UnixRights(int(fd)), nil)
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("pass descriptor to the plugin: %w", err)
	}
	return nil
}

// Close closes the host's end; the plugin's Receiver then stops.
func (s *Sender) Close() error { return s.c.Close() }

// unclaimedTTL is how long a received descriptor waits for the call that
// names its token; past it, the call was cancelled before it reached the
// plugin, and the descriptor is closed.
const unclaimedTTL = time.Minute

// Receiver is the plugin's end: it collects descriptors as they arrive and
// hands each to the call that names its token.
type Receiver struct {
	c *net.UnixConn

	mu      sync.Mutex
	files   map[string]received
	waiting map[string]chan struct{}
	err     error // set once the socket fails: no more descriptors
}

type received struct {
	f  *os.File
	at time.Time
}

// FromEnv returns the Receiver for the descriptor named by EnvVar, or nil if
// the host passed none (an older host, or a plugin run by hand).
func FromEnv() (*Receiver, error) {
	v := os.Getenv(EnvVar)
	if v == "" {
		return nil, nil
	}
	var fd int
	if _, err := fmt.Sscan(v, &fd); err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: want a descriptor number >= 3", EnvVar, v)
	}
	r, err := NewReceiver(os.NewFile(uintptr(fd), "attachd-fd-socket"))
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %w", EnvVar, v, err)
	}
	return r, nil
}

// NewReceiver starts receiving descriptors on f, the plugin's end of the
// socket pair, which it takes over.
func NewReceiver(f *os.File) (*Receiver, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("not a Unix socket")
	}
	r := &Receiver{c: uc, files: map[string]received{}, waiting: map[string]chan struct{}{}}
	go r.loop()
	return r, nil
}

func (r *Receiver) loop() {
	buf := make([]byte, TokenSize+1)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := r.c.ReadMsgUnix(buf, oob)
		if err != nil {
			r.fail(err)
			return
		}
		f, err := parse(buf[:n], oob[:oobn])
		if err != nil {
			continue // a malformed message carries nothing usable
		}
		r.put(string(buf[:n]), f)
	}
}

// parse returns the one descriptor of a message, closing any extra ones.
func parse(token, oob []byte) (*os.File, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		if got, err := syscall.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	if len(token) != TokenSize || len(fds) != 1 {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, errors.New("want one token and one descriptor")
	}
	syscall.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), "attachd-passed-fd"), nil
}

func (r *Receiver) put(token string, f *os.File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for t, old := range r.files {
		if now.Sub(old.at) > unclaimedTTL {
			old.f.Close()
			delete(r.files, t)
		}
	}
	r.files[token] = received{f, now}
	if ch, ok := r.waiting[token]; ok {
		close(ch)
		delete(r.waiting, token)
	}
}

func (r *Receiver) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
	for t, ch := range r.waiting {
		close(ch)
		delete(r.waiting, t)
	}
}

// Take returns the descriptor sent under token, waiting for it until ctx
// ends. The caller owns the file and closes it.
func (r *Receiver) Take(ctx context.Context, token []byte) (*os.File, error) {
	if len(token) != TokenSize {
		return nil, fmt.Errorf("descriptor token of %d bytes, want %d", len(token), TokenSize)
	}
	for {
		r.mu.Lock()
		if got, ok := r.files[string(token)]; ok {
			delete(r.files, string(token))
			r.mu.Unlock()
			return got.f, nil
		}
		if r.err != nil {
			err := r.err
			r.mu.Unlock()
			return nil, fmt.Errorf("descriptor socket: %w", err)
		}
		ch, ok := r.waiting[string(token)]
		if !ok {
			ch = make(chan struct{})
			r.waiting[string(token)] = ch
		}
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			r.mu.Lock()
			delete(r.waiting, string(token))
			r.mu.Unlock()
			return nil, fmt.Errorf("waiting for the passed descriptor: %w", ctx.Err())
		}
	}
}

// Close stops receiving and closes the descriptors no call has taken.
func (r *Receiver) Close() error {
	err := r.c.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, got := range r.files {
		got.f.Close()
		delete(r.files, t)
	}
	return err
}
