package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// The commit protocol (docs/design.md, "Commit"):
//
//  1. The bytes are written to tmp/, hashed, fsync'd and renamed to blobs/.
//  2. The new sidecar is written to tmp/ and fsync'd; the sidecar it replaces,
//     if any, is hard-linked into tmp/ so that it can be put back.
//  3. The new sidecar is renamed over objects/<key> and the folder fsync'd:
//     from here a crash leaves the new version, which the restart's
//     reconciliation indexes.
//  4. The index transaction commits: the change is visible and acknowledged.
//
// A failure in steps 1–3 leaves the previous state as it was. A failure of
// step 4 puts the previous sidecar back (undo), so a client that hears an
// error finds the previous state exactly; if even that fails, the change is
// "in doubt": both blobs are kept, the store is marked for reconciliation at
// the next start, and the sidecar on disk (the new version) wins there.

// failpoint is called at each step of a commit with the step's name. Tests
// make one step fail to check that a failure there leaves the previous state
// or the new one, never a mix; in production it does nothing.
var failpoint = func(step string) error { return nil }

// inDoubtError is a failure after the new sidecar was renamed into place that
// could not be undone: the new version stands on disk and the restart's
// reconciliation completes it. Its blob must be kept.
type inDoubtError struct{ err error }

func (e *inDoubtError) Error() string { return e.err.Error() }
func (e *inDoubtError) Unwrap() error { return e.err }

func isInDoubt(err error) bool {
	var d *inDoubtError
	return errors.As(err, &d)
}

// placement is a change to the objects tree that the index does not know
// yet: a sidecar renamed into place, and the folders made for it. undo puts
// back what was there; done forgets how.
type placement struct {
	s    *Store
	name string   // objects/<key>, or "" if nothing was placed
	prev string   // tmp/ name linked to the replaced sidecar, or ""
	dirs []string // folders created for it, outermost first
}

// linkPrevious links the sidecar at name, if one is there, into tmp/, so that
// undo can put it back after a new one replaces it.
func (p *placement) linkPrevious(name string) error {
	prev := "tmp/" + newVersion() + ".prev"
	err := failpoint("link-previous")
	if err == nil {
		err = p.s.root.Link(name, prev)
	}
	switch {
	case err == nil:
		p.prev = prev
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

// rollback undoes p after the index refused the change (err). If the undo
// fails too, the change is in doubt: the store is marked for reconciliation
// at the next start.
func (s *Store) rollback(p *placement, err error) error {
	if uerr := p.undo(); uerr != nil {
		s.inDoubt.Store(true)
		s.log.Error("a change failed after its sidecar was in place and could not be undone; "+
			"the next start reconciles the index with the data directory", "err", err, "undo_err", uerr)
		return &inDoubtError{err}
	}
	return err
}

// moveAside renames name into tmp/ (a delete that can be undone by renaming
// it back) and returns the placement that does so.
func (s *Store) moveAside(name string) (*placement, error) {
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

// writeTemp writes b to a new file in tmp/ and fsyncs it.
func (s *Store) writeTemp(b []byte) (string, error) {
	tmp := "tmp/" + newVersion() + ".sidecar"
	var f *os.File
	err := failpoint("sidecar-create")
	if err == nil {
		f, err = s.root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
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
		s.root.Remove(tmp)
		return "", fmt.Errorf("write sidecar: %w", mapErr(err))
	}
	return tmp, nil
}
