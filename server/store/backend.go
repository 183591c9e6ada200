package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/attachd/attachd/plugins/blob"
)

// The storage backend contract lives in plugins/blob, shared with the
// plugin host, which must not depend on the server's packages.
type (
	Backend    = blob.Backend
	BlobWriter = blob.Writer
	BlobInfo   = blob.Info
)

// copyFile writes a local file into a backend's writer; a storage plugin
// reads the file itself, through a descriptor (blob.FileWriter).
func copyFile(w BlobWriter, f *os.File) (int64, error) { return blob.CopyFile(w, f) }

// DirBackend is a Backend over a local folder: each blob a file, written to a
// temporary name, fsync'd and renamed on Commit.
type DirBackend struct {
	root *os.Root
}

// NewDirBackend opens (creating if needed) the folder dir as a blob store.
func NewDirBackend(dir string) (*DirBackend, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create blob folder: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open blob folder: %w", err)
	}
	return &DirBackend{root: root}, nil
}

// Close releases the folder.
func (d *DirBackend) Close() error { return d.root.Close() }

func checkBlobName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.Contains(name, "\x00") {
		return fmt.Errorf("%w: blob name %q", ErrInvalidKey, name)
	}
	for _, p := range strings.Split(name, "/") {
		if p == "" || p == "." || p == ".." || strings.HasPrefix(p, ".tmp-") {
			return fmt.Errorf("%w: blob name %q", ErrInvalidKey, name)
		}
	}
	return nil
}

// Stat implements Backend.
func (d *DirBackend) Stat(ctx context.Context, name string) (BlobInfo, error) {
	if err := checkBlobName(name); err != nil {
		return BlobInfo{}, err
	}
	fi, err := d.root.Stat(name)
	if errors.Is(err, fs.ErrNotExist) || err == nil && fi.IsDir() {
		return BlobInfo{}, ErrNotFound
	}
	if err != nil {
		return BlobInfo{}, err
	}
	return BlobInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Open implements Backend.
func (d *DirBackend) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if err := checkBlobName(name); err != nil {
		return nil, err
	}
	f, err := d.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	if n < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, n), f}, nil
}

// Create implements Backend.
func (d *DirBackend) Create(ctx context.Context, name string, size int64) (BlobWriter, error) {
	if err := checkBlobName(name); err != nil {
		return nil, err
	}
	dir := filepath.Dir(name)
	if dir != "." {
		if err := d.root.MkdirAll(dir, 0o750); err != nil {
			return nil, mapErr(err)
		}
	}
	tmp := filepath.Join(dir, ".tmp-"+newVersion())
	f, err := d.root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, mapErr(err)
	}
	return &dirWriter{d: d, f: f, tmp: tmp, name: name, dir: dir}, nil
}

type dirWriter struct {
	d              *DirBackend
	f              *os.File
	tmp, name, dir string
	done           bool
}

func (w *dirWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	return n, mapErr(err)
}

func (w *dirWriter) Commit(ctx context.Context) error {
	if w.done {
		return errors.New("blob writer already finished")
	}
	w.done = true
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.d.root.Rename(w.tmp, w.name)
	}
	if err == nil {
		var dir *os.File
		if dir, err = w.d.root.Open(w.dir); err == nil {
			err = dir.Sync()
			dir.Close()
		}
	}
	if err != nil {
		w.d.root.Remove(w.tmp)
		return fmt.Errorf("commit blob %s: %w", w.name, mapErr(err))
	}
	return nil
}

func (w *dirWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return w.d.root.Remove(w.tmp)
}

// Delete implements Backend.
func (d *DirBackend) Delete(ctx context.Context, name string) error {
	if err := checkBlobName(name); err != nil {
		return err
	}
	if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// List implements Backend.
func (d *DirBackend) List(ctx context.Context, prefix, cursor string, limit int) ([]BlobInfo, string, error) {
	var all []BlobInfo
	err := fs.WalkDir(d.root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".tmp-") || !strings.HasPrefix(p, prefix) || p <= cursor {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		all = append(all, BlobInfo{Name: p, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return page(all, limit)
}

func page(all []BlobInfo, limit int) ([]BlobInfo, string, error) {
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	if limit <= 0 || len(all) <= limit {
		return all, "", nil
	}
	return all[:limit], all[limit-1].Name, nil
}

// MemBackend is a Backend in memory, for tests.
type MemBackend struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

// NewMemBackend returns an empty MemBackend.
func NewMemBackend() *MemBackend { return &MemBackend{blobs: map[string][]byte{}} }

// Stat implements Backend.
func (m *MemBackend) Stat(ctx context.Context, name string) (BlobInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[name]
	if !ok {
		return BlobInfo{}, ErrNotFound
	}
	return BlobInfo{Name: name, Size: int64(len(b))}, nil
}

// Open implements Backend.
func (m *MemBackend) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	m.mu.Lock()
	b, ok := m.blobs[name]
	m.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	off = min(max(off, 0), int64(len(b)))
	end := int64(len(b))
	if n >= 0 {
		end = min(end, off+n)
	}
	return io.NopCloser(bytes.NewReader(b[off:end])), nil
}

// Create implements Backend.
func (m *MemBackend) Create(ctx context.Context, name string, size int64) (BlobWriter, error) {
	return &memWriter{m: m, name: name}, nil
}

type memWriter struct {
	m    *MemBackend
	name string
	buf  bytes.Buffer
}

func (w *memWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *memWriter) Abort() error                { return nil }
func (w *memWriter) Commit(ctx context.Context) error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.m.blobs[w.name] = bytes.Clone(w.buf.Bytes())
	return nil
}

// Delete implements Backend.
func (m *MemBackend) Delete(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, name)
	return nil
}

// List implements Backend.
func (m *MemBackend) List(ctx context.Context, prefix, cursor string, limit int) ([]BlobInfo, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []BlobInfo
	for name, b := range m.blobs {
		if strings.HasPrefix(name, prefix) && name > cursor {
			all = append(all, BlobInfo{Name: name, Size: int64(len(b))})
		}
	}
	return page(all, limit)
}
