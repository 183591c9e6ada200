package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// placement is a change to the objects tree that the index does not know
// yet: a sidecar renamed into place, and the folders made for it. undo puts
// back what was there; done forgets how.
type placement struct {
	s    *Store
	name string   // objects/<key>, or "" if nothing was placed
	prev string   // tmp/ name linked to the replaced sidecar, or ""
	dirs []string // folders created for it, outermost first
}

// linkPrevious links the sidecar name in the folder d, if one is there,
// into tmp/, so that undo can put it back after a new one replaces it.
func (p *placement) linkPrevious(d *dirFD, name string) error {
	prev := newVersion() + ".prev"
	err := failpoint("link-previous")
	if err == nil {
		err = d.linkTo(name, p.s.tmpDir, prev)
	}
	switch {
	case err == nil:
		p.prev = "tmp/" + prev
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%w: a folder is in the way", ErrConflict)
	}
	return fmt.Errorf("keep previous sidecar: %w", mapErr(err))
}

// done discards the way back: the change is committed.
func (p *placement) done() {
	if p.prev != "" {
		p.s.root.Remove(p.prev)
	}
}

// undo restores the objects tree to what it was before the placement.
func (p *placement) undo() error {
	if err := failpoint("undo"); err != nil {
		return err
	}
	if p.name != "" {
		var err error
		if p.prev != "" {
			err = p.s.root.Rename(p.prev, p.name)
		} else {
			err = p.s.root.Remove(p.name)
		}
		if err != nil {
			return fmt.Errorf("undo %s: %w", p.name, err)
		}
		if err := p.s.syncDir(parentDir(p.name)); err != nil {
			return err
		}
		p.prev = ""
	}
	return p.removeDirs()
}

// removeDirs removes the folders the placement created, innermost first. A
// folder that something else has meanwhile been put in stays.
func (p *placement) removeDirs() error {
	for i := len(p.dirs) - 1; i >= 0; i-- {
		if err := p.s.root.Remove(p.dirs[i]); err != nil {
			if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
				return nil
			}
			return fmt.Errorf("undo folder %s: %w", p.dirs[i], err)
		}
		if err := p.s.syncDir(parentDir(p.dirs[i])); err != nil {
			return err
		}
	}
	p.dirs = nil
	return nil
}

// moveAside renames name into tmp/ (a delete that can be undone by renaming
// it back) and returns the placement that does so.
// With a shared index there is no objects tree, and nothing to move.
func (s *Store) moveAside(name string) (*placement, error) {
	if s.shared {
		return &placement{s: s}, nil
	}
	aside := "tmp/" + newVersion() + ".aside"
	err := failpoint("move-aside")
	if err == nil {
		err = s.root.Rename(name, aside)
	}
	if err != nil {
		return nil, fmt.Errorf("remove %s: %w", name, mapErr(err))
	}
	p := &placement{s: s}
	if err := s.syncDir(parentDir(name)); err != nil {
		s.root.Rename(aside, name)
		return nil, err
	}
	// Undoing it is renaming it back: the same as putting back a replaced
	// sidecar at a name where nothing is now.
	p.name, p.prev = name, aside
	return p, nil
}

// discard finishes a moveAside: the file (or folder) in tmp/ goes.
func (p *placement) discard() {
	if p.prev != "" {
		p.s.root.RemoveAll(p.prev)
		p.prev = ""
	}
}

func parentDir(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[:i]
		}
	}
	return "."
}

// mkdirAllFor creates dir and its parents inside the root, fsyncing the
// parent of each folder it creates so that the new entries survive a crash,
// and records each created folder in p so that undo removes it.
func (s *Store) mkdirAllFor(p *placement, dir string) error {
	if (dir == "objects" || strings.HasPrefix(dir, "objects/")) && s.knownDir(trimObjects(dir)) {
		return nil
	}
	if fi, err := s.root.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%w: %q is an object, not a folder", ErrConflict, UnescapeKey(trimObjects(dir)))
		}
		return nil
	}
	parent := parentDir(dir)
	if parent != "." && parent != dir {
		if err := s.mkdirAllFor(p, parent); err != nil {
			return err
		}
	}
	err := failpoint("mkdir")
	if err == nil {
		err = s.root.Mkdir(dir, 0o750)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			if fi, serr := s.root.Stat(dir); serr == nil && fi.IsDir() {
				return nil // made by a concurrent store
			}
		}
		return fmt.Errorf("create folder %s: %w", UnescapeKey(trimObjects(dir)), mapErr(err))
	}
	if p != nil {
		p.dirs = append(p.dirs, dir)
	}
	return s.syncDir(parent)
}

func trimObjects(dir string) string {
	if dir == "objects" {
		return ""
	}
	if len(dir) > len("objects/") && dir[:len("objects/")] == "objects/" {
		return dir[len("objects/"):]
	}
	return dir
}

// writeTemp writes b to a new file in tmp/ and fsyncs it, and returns its
// name there.
func (s *Store) writeTemp(b []byte) (string, error) {
	tmp := newVersion() + ".sidecar"
	var f *os.File
	err := failpoint("sidecar-create")
	if err == nil {
		f, err = s.tmpDir.create(tmp)
	}
	if err != nil {
		return "", fmt.Errorf("create sidecar: %w", mapErr(err))
	}
	err = failpoint("sidecar-write")
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		if err = failpoint("sidecar-fsync"); err == nil {
			err = fsync(f)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.tmpDir.remove(tmp)
		return "", fmt.Errorf("write sidecar: %w", mapErr(err))
	}
	return tmp, nil
}
