// Package readcache keeps node-local copies of blobs that a remote backend
// holds, so that a read served from them costs a local file, not a round
// trip to the backend (docs/cluster.md, "The read cache").
//
// Blobs are immutable: a name always stands for the same bytes, so a copy is
// never stale, only unnamed once its object is replaced or deleted. The
// cache therefore holds whole files named by their blob, bounded in bytes,
// and evicts the least recently read first.
//
// A copy is never fsync'd. The directory records the boot it was written in
// and whether it was closed cleanly (after a syncfs): a copy that a crash of
// the machine may have cut short is never read, because the next start that
// finds another boot and no clean close empties the directory.
package readcache

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// MinCost is what the smallest copy costs of the bound: it keeps the number
// of copies, and the memory that tracks them, under max/MinCost.
const MinCost = 64 << 10

// stateFile records the boot the directory was last opened in, or "clean".
const stateFile = "state"

// Cache is a bounded directory of blob copies. It is safe for concurrent use.
type Cache struct {
	dir string
	max int64
	log *slog.Logger

	mu      sync.Mutex
	lru     list.List // of *entry, most recently read first
	byName  map[string]*list.Element
	filling map[string]bool // names being filled now
	used    int64           // bytes of the copies held, at MinCost each at least
	pending int64           // bytes reserved by the copies being filled
	closed  bool            // by Close: nothing more is kept

	hits, misses, fills, evictions atomic.Int64
}

type entry struct {
	name string
	cost int64
}

func cost(size int64) int64 { return max(size, MinCost) }

// Open opens the cache in dir, creating it, with room for max bytes of
// copies. It keeps the copies of an earlier run unless the machine may have
// crashed since they were written.
func Open(dir string, max int64, log *slog.Logger) (*Cache, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read cache: size %d: want more than 0", max)
	}
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("read cache: %w", err)
	}
	c := &Cache{dir: dir, max: max, log: log, byName: map[string]*list.Element{}, filling: map[string]bool{}}
	boot, err := bootID()
	if err != nil {
		return nil, fmt.Errorf("read cache: %w", err)
	}
	state, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read cache: %w", err)
	}
	keep := string(state) == "clean" || boot != "" && string(state) == boot
	if err := c.load(keep); err != nil {
		return nil, err
	}
	// From now on a crash of the machine may cut copies short, until Close.
	if err := writeState(dir, boot); err != nil {
		return nil, err
	}
	return c, nil
}

// load takes in the copies of an earlier run, the most recently written
// first (what does not fit is the oldest), or removes them all; and removes
// what an earlier run left half filled.
func (c *Cache) load(keep bool) error {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("read cache: %w", err)
	}
	type found struct {
		name string
		size int64
		mod  int64
	}
	var copies []found
	dropped := 0
	for _, de := range des {
		name := de.Name()
		if name == stateFile {
			continue
		}
		fi, err := de.Info()
		if !keep || err != nil || !de.Type().IsRegular() || !validName(name) {
			// A file left here could be a torn copy that a later start in
			// this boot would keep: do not go on without removing it.
			if err := os.RemoveAll(filepath.Join(c.dir, name)); err != nil {
				return fmt.Errorf("read cache: %w", err)
			}
			if !strings.HasPrefix(name, ".fill-") {
				dropped++
			}
			continue
		}
		copies = append(copies, found{name, fi.Size(), fi.ModTime().UnixNano()})
	}
	if dropped > 0 && !keep {
		c.log.Info("read cache emptied: the machine may have crashed since its copies were written", "copies", dropped)
	}
	slices.SortFunc(copies, func(a, b found) int { return int(min(max(b.mod-a.mod, -1), 1)) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range copies { // newest first, so the oldest are evicted
		if c.used+cost(f.size) > c.max {
			os.Remove(filepath.Join(c.dir, f.name))
			continue
		}
		c.byName[f.name] = c.lru.PushBack(&entry{f.name, cost(f.size)})
		c.used += cost(f.size)
	}
	return nil
}

// Close records that every copy is on disk, so that the next start keeps
// them even after a reboot.
// Copies still being filled are not kept.
func (c *Cache) Close() error {
	c.mu.Lock()
	was := c.closed
	c.closed = true
	c.mu.Unlock()
	if was {
		return nil
	}
	if err := syncFS(c.dir); err != nil {
		return fmt.Errorf("read cache: %w", err)
	}
	return writeState(c.dir, "clean")
}

// validName accepts what the store names blobs: lowercase hex.
func validName(name string) bool {
	return len(name) >= 3 && strings.Trim(name, "0123456789abcdef") == ""
}

// writeState replaces the state file durably: a state that a crash could
// lose would let the next start keep copies it must not.
func writeState(dir, state string) error {
	tmp := filepath.Join(dir, ".state")
	f, err := os.Create(tmp)
	if err == nil {
		_, err = f.WriteString(state)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, stateFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("read cache: record its state: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Open opens the copy of the named blob, if the cache holds one.
func (c *Cache) Open(name string) (*os.File, bool) {
	c.mu.Lock()
	el, ok := c.byName[name]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	f, err := os.Open(filepath.Join(c.dir, name))
	if err != nil {
		// Removed behind our back: forget it.
		c.Remove(name)
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return f, true
}

// fits reports whether a copy of size bytes is worth keeping: one blob may
// take at most an eighth of the cache, so that a large recording does not
// push out everything else; and the file system must keep a tenth of its
// space free, beside the copies being filled, for the stores the cache
// shares it with.
func (c *Cache) fits(size int64) bool {
	if cost(size) > c.max/8 {
		return false
	}
	var st unix.Statfs_t
	if unix.Statfs(c.dir, &st) != nil {
		return false
	}
	c.mu.Lock()
	pending := c.pending
	c.mu.Unlock()
	free := int64(st.Bavail) * int64(st.Bsize)
	return free-pending-size >= int64(st.Blocks)*int64(st.Bsize)/10
}

// Adopt moves the file at path, the complete bytes of the named blob, into
// the cache; path must be on the cache's file system. It reports whether it
// did: if not, the file is still at path.
func (c *Cache) Adopt(name, path string, size int64) bool {
	if !validName(name) || !c.fits(size) {
		return false
	}
	if err := os.Rename(path, filepath.Join(c.dir, name)); err != nil {
		c.log.Debug("read cache: cannot adopt a blob", "blob", name, "err", err)
		return false
	}
	c.add(name, size)
	return true
}

// add records a copy now in place and evicts what no longer fits.
func (c *Cache) add(name string, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byName[name]; ok {
		c.used -= el.Value.(*entry).cost
		c.lru.Remove(el)
	}
	c.byName[name] = c.lru.PushFront(&entry{name, cost(size)})
	c.used += cost(size)
	for c.used > c.max {
		el := c.lru.Back()
		e := el.Value.(*entry)
		c.lru.Remove(el)
		delete(c.byName, e.name)
		c.used -= e.cost
		os.Remove(filepath.Join(c.dir, e.name))
		c.evictions.Add(1)
	}
}

// Remove removes the copy of the named blob, if any. A reader that opened
// it already reads on.
func (c *Cache) Remove(name string) {
	c.mu.Lock()
	el, ok := c.byName[name]
	if ok {
		c.used -= el.Value.(*entry).cost
		c.lru.Remove(el)
		delete(c.byName, name)
	}
	c.mu.Unlock()
	if ok {
		os.Remove(filepath.Join(c.dir, name))
	}
}

// Names returns the names of the copies held now.
func (c *Cache) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.byName))
	for n := range c.byName {
		names = append(names, n)
	}
	return names
}

// Stats are the cache's counters since Open.
type Stats struct {
	Copies                         int
	Bytes, Max                     int64 // Bytes counts each copy at MinCost at least
	Hits, Misses, Fills, Evictions int64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	n, used := len(c.byName), c.used
	c.mu.Unlock()
	return Stats{Copies: n, Bytes: used, Max: c.max, Hits: c.hits.Load(), Misses: c.misses.Load(),
		Fills: c.fills.Load(), Evictions: c.evictions.Load()}
}

// A Filler writes one copy as the bytes are read from the backend. It keeps
// the copy only if every byte came, in order, and they hash to what the
// index says: bytes the backend garbled are passed on to one reader at
// most, never kept.
type Filler struct {
	c      *Cache
	name   string
	size   int64
	sha256 string
	f      *os.File // created by the first Write: a reader that reads nothing (HEAD) costs no file
	h      hash.Hash
	n      int64
	ended  bool
}

// Fill starts a copy of the named blob, of size bytes with the given SHA-256
// (hex). It returns nil when the copy is not worth making: held already,
// being made by another reader, too large, or no room on the disk.
func (c *Cache) Fill(name string, size int64, sha256hex string) *Filler {
	if !validName(name) || sha256hex == "" || !c.fits(size) {
		return nil
	}
	c.mu.Lock()
	_, held := c.byName[name]
	// The copies being filled take at most half the bound more: however
	// many slow readers there are, the cache's disk stays within 1.5×.
	start := !held && !c.filling[name] && !c.closed && c.pending+cost(size) <= c.max/2
	if start {
		c.filling[name] = true
		c.pending += cost(size)
	}
	c.mu.Unlock()
	if !start {
		return nil
	}
	return &Filler{c: c, name: name, size: size, sha256: sha256hex, h: sha256.New()}
}

// done ends the fill of a copy of size bytes.
func (c *Cache) done(name string, size int64) {
	c.mu.Lock()
	delete(c.filling, name)
	c.pending -= cost(size)
	c.mu.Unlock()
}

// Write appends the next bytes of the blob. An error abandons the copy.
func (w *Filler) Write(p []byte) error {
	if w.ended {
		return errors.New("read cache: copy abandoned")
	}
	if w.n+int64(len(p)) > w.size {
		w.Abort()
		return errors.New("read cache: more bytes than the blob's size")
	}
	if err := w.create(); err != nil {
		return err
	}
	w.h.Write(p)
	if _, err := w.f.Write(p); err != nil {
		w.Abort()
		return err
	}
	w.n += int64(len(p))
	return nil
}

// create makes the copy's file, once; failing, it abandons the copy.
func (w *Filler) create() error {
	if w.f != nil {
		return nil
	}
	f, err := os.CreateTemp(w.c.dir, ".fill-*")
	if err != nil {
		w.Abort()
		return fmt.Errorf("read cache: %w", err)
	}
	w.f = f
	return nil
}

// Written returns how many bytes have been written.
func (w *Filler) Written() int64 { return w.n }

// Finish keeps the copy if it is whole and its hash is the blob's, and
// abandons it otherwise.
func (w *Filler) Finish() error {
	if w.ended {
		return errors.New("read cache: copy abandoned")
	}
	if err := w.create(); err != nil { // an empty blob's copy is an empty file
		return err
	}
	defer w.c.done(w.name, w.size)
	f := w.f
	w.f, w.ended = nil, true
	sum := hex.EncodeToString(w.h.Sum(nil))
	var err error
	switch {
	case w.n != w.size:
		err = fmt.Errorf("read cache: %d of the blob's %d bytes", w.n, w.size)
	case sum != w.sha256:
		err = fmt.Errorf("read cache: blob %s hashes to %s, not to %s", w.name, sum, w.sha256)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.c.keep(f.Name(), w.name, w.size)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	w.c.fills.Add(1)
	return nil
}

// keep renames a filled copy into place, unless the cache was closed: a
// copy renamed after Close's syncfs could be torn by a power loss, and the
// directory would still say it was closed cleanly.
func (c *Cache) keep(tmp, name string, size int64) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errors.New("read cache: closed")
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, name)); err != nil {
		return err
	}
	c.add(name, size)
	return nil
}

// Abort abandons the copy.
func (w *Filler) Abort() {
	if w.ended {
		return
	}
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		w.f = nil
	}
	w.ended = true
	w.c.done(w.name, w.size)
}
