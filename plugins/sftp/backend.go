package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/attachd/attachd/plugins/sdk"
)

// tmpPrefix starts the name of a file being written. List hides such
// files, and blob names may not use the prefix.
const tmpPrefix = ".attachd-tmp-"

// staleTmp is the age past which List removes a temporary file: no write
// stays idle that long, so its writer is gone.
const staleTmp = 24 * time.Hour

// maxOrphans bounds the temporary files remembered for removal; past it
// they are logged and left to List's sweep.
const maxOrphans = 1024

// orphanRetry is how soon orphans are tried again when no call comes to
// remove them: a write cut by an outage may fail after the last call.
const orphanRetry = 5 * time.Second

// backend implements sdk.Storage over one SFTP connection, opened on first
// use and reopened after it drops.
type backend struct {
	mu     sync.Mutex
	addr   string
	root   string
	ssh    *ssh.ClientConfig
	client *sftp.Client
	// orphans are temporary files a failed write could not remove, most
	// often because the connection it was written over had dropped. They
	// are removed over the next connection, so a cut write leaks nothing;
	// retrying is set while a retry is due (retryOrphans).
	orphans  map[string]struct{}
	retrying bool
}

func (b *backend) setup(addr, root string, c *ssh.ClientConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addr, b.root, b.ssh = addr, root, c
	if b.client != nil {
		b.client.Close()
		b.client = nil
	}
}

// conn returns the SFTP client, connecting if needed.
func (b *backend) conn() (*sftp.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client != nil {
		b.sweepOrphans(b.client)
		return b.client, nil
	}
	if b.ssh == nil {
		return nil, errors.New("sftp: not configured")
	}
	sc, err := ssh.Dial("tcp", b.addr, b.ssh)
	if err != nil {
		return nil, fmt.Errorf("%w: ssh %s@%s: %v", sdk.ErrUnavailable, b.ssh.User, b.addr, err)
	}
	c, err := sftp.NewClient(sc, sftp.UseConcurrentWrites(true), sftp.UseFstat(true))
	if err != nil {
		sc.Close()
		return nil, fmt.Errorf("%w: sftp subsystem on %s: %v", sdk.ErrUnavailable, b.addr, err)
	}
	b.client = c
	b.sweepOrphans(c)
	// Forget the client when the connection drops, so the next call
	// reconnects instead of failing for ever.
	go func() {
		err := c.Wait()
		b.mu.Lock()
		if b.client == c {
			b.client = nil
		}
		b.mu.Unlock()
		if err != nil {
			sdk.Logger().Warn("sftp connection lost", "address", b.addr, "err", err)
		}
	}()
	return c, nil
}

// discard removes a temporary file, or remembers it for the next
// connection when that fails.
func (b *backend) discard(c *sftp.Client, tmp string) {
	err := c.Remove(tmp)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.orphans == nil {
		b.orphans = make(map[string]struct{})
	}
	if len(b.orphans) >= maxOrphans {
		sdk.Logger().Warn("sftp: temporary file left behind", "path", tmp, "err", err)
		return
	}
	b.orphans[tmp] = struct{}{}
	b.retryLater()
}

// retryLater makes sure the orphans are tried again in orphanRetry even if
// no call comes. Called with b.mu held.
func (b *backend) retryLater() {
	if !b.retrying {
		b.retrying = true
		time.AfterFunc(orphanRetry, b.retryOrphans)
	}
}

// retryOrphans removes the orphans over the connection, made again if need
// be; while it cannot be, it tries again later. One it cannot remove over
// a working connection is remembered again by discard, which retries too.
func (b *backend) retryOrphans() {
	b.mu.Lock()
	b.retrying = false
	idle := len(b.orphans) == 0 // a call removed them meanwhile
	b.mu.Unlock()
	if idle {
		return
	}
	_, err := b.conn()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil && b.ssh != nil && len(b.orphans) > 0 {
		b.retryLater()
	}
}

// sweepOrphans removes the orphans over c, in the background. A write can
// be cut after another call has already reconnected, so every call tries
// them, not only a new connection. Called with b.mu held.
func (b *backend) sweepOrphans(c *sftp.Client) {
	if len(b.orphans) == 0 {
		return
	}
	orphans := b.orphans
	b.orphans = nil
	go func() {
		for tmp := range orphans {
			b.discard(c, tmp)
		}
	}()
}

// remote maps a blob name to its remote path, refusing names that could
// step outside root or collide with temporary files.
func (b *backend) remote(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") {
		return "", fmt.Errorf("%w: %q", sdk.ErrInvalidName, name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, tmpPrefix) {
			return "", fmt.Errorf("%w: %q", sdk.ErrInvalidName, name)
		}
	}
	return path.Join(b.root, name), nil
}

// mapErr turns SFTP errors into the SDK's.
func mapErr(op, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return sdk.ErrNotFound
	case errors.Is(err, sftp.ErrSSHFxConnectionLost), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, sdk.ErrUnavailable):
		return fmt.Errorf("%w: %s %s: %v", sdk.ErrUnavailable, op, name, err)
	}
	return fmt.Errorf("sftp %s %s: %w", op, name, err)
}

func (b *backend) Stat(ctx context.Context, name string) (sdk.BlobInfo, error) {
	p, err := b.remote(name)
	if err != nil {
		return sdk.BlobInfo{}, err
	}
	c, err := b.conn()
	if err != nil {
		return sdk.BlobInfo{}, err
	}
	fi, err := c.Stat(p)
	if err == nil && !fi.Mode().IsRegular() {
		return sdk.BlobInfo{}, sdk.ErrNotFound
	}
	if err != nil {
		return sdk.BlobInfo{}, mapErr("stat", name, err)
	}
	return sdk.BlobInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func (b *backend) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	p, err := b.remote(name)
	if err != nil {
		return nil, err
	}
	c, err := b.conn()
	if err != nil {
		return nil, err
	}
	f, err := c.Open(p)
	if err != nil {
		return nil, mapErr("open", name, err)
	}
	// A blob store has no folders: a name that is one on the server is no blob.
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		f.Close()
		return nil, sdk.ErrNotFound
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, mapErr("seek", name, err)
	}
	if n < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, n), f}, nil
}

func (b *backend) Create(ctx context.Context, name string, size int64) (sdk.BlobWriter, error) {
	p, err := b.remote(name)
	if err != nil {
		return nil, err
	}
	c, err := b.conn()
	if err != nil {
		return nil, err
	}
	dir := path.Dir(p)
	if err := c.MkdirAll(dir); err != nil {
		return nil, mapErr("mkdir", path.Dir(name), err)
	}
	// The temporary file sits beside the final one: a rename within one
	// folder is atomic on every filesystem an SFTP server fronts.
	tmp := path.Join(dir, tmpPrefix+rand.Text())
	f, err := c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		// The server may have made the file and lost only its answer.
		b.discard(c, tmp)
		return nil, mapErr("create", name, err)
	}
	return &writer{b: b, c: c, f: f, tmp: tmp, final: p, name: name}, nil
}

type writer struct {
	b                *backend
	c                *sftp.Client
	f                *sftp.File
	tmp, final, name string
	done             bool
}

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	return n, mapErr("write", w.name, err)
}

func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("sftp commit %s: already finished", w.name)
	}
	w.done = true
	// fsync@openssh.com, where offered, makes the commit durable before
	// attachd forgets its spooled copy.
	if err := w.f.Sync(); err != nil && !isUnsupported(err) {
		w.f.Close()
		w.b.discard(w.c, w.tmp)
		return mapErr("sync", w.name, err)
	}
	if err := w.f.Close(); err != nil {
		w.b.discard(w.c, w.tmp)
		return mapErr("close", w.name, err)
	}
	if err := w.c.PosixRename(w.tmp, w.final); err != nil {
		w.b.discard(w.c, w.tmp)
		return mapErr("rename", w.name, err)
	}
	return nil
}

func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	w.b.discard(w.c, w.tmp)
	return nil
}

func isUnsupported(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported
}

func (b *backend) Delete(ctx context.Context, name string) error {
	p, err := b.remote(name)
	if err != nil {
		return err
	}
	c, err := b.conn()
	if err != nil {
		return err
	}
	if err := c.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return mapErr("delete", name, err)
	}
	return nil
}

// List walks the folder that holds every name with the prefix. SFTP lists
// folders only, so this reads the whole subtree: attachd lists a backend
// only to rebuild its index, never per request.
func (b *backend) List(ctx context.Context, prefix, cursor string, limit int) ([]sdk.BlobInfo, string, error) {
	c, err := b.conn()
	if err != nil {
		return nil, "", err
	}
	start := b.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = path.Join(b.root, prefix[:i])
	}
	var all []sdk.BlobInfo
	w := c.Walk(start)
	for w.Step() {
		if err := w.Err(); err != nil {
			if errors.Is(err, fs.ErrNotExist) && w.Path() == start {
				return nil, "", nil
			}
			return nil, "", mapErr("list", prefix, err)
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		fi := w.Stat()
		if fi.Mode().IsRegular() && strings.HasPrefix(fi.Name(), tmpPrefix) && time.Since(fi.ModTime()) > staleTmp {
			// Left by a write whose plugin died before it could clean up.
			b.discard(c, w.Path())
		}
		if !fi.Mode().IsRegular() || strings.HasPrefix(fi.Name(), tmpPrefix) {
			continue
		}
		all = append(all, sdk.BlobInfo{Name: b.name(w.Path()), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	page, next := sdk.Page(all, prefix, cursor, limit)
	return page, next, nil
}

// name maps a remote path under root back to a blob name.
func (b *backend) name(p string) string {
	if b.root == "." {
		return p
	}
	return strings.TrimPrefix(p, strings.TrimSuffix(b.root, "/")+"/")
}
