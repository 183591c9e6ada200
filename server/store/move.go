package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/attachd/attachd/server/index"
)

// Move renames the object or folder at src to dst. With overwrite, whatever
// is at dst is replaced; without, an existing dst is ErrExists. dst's parent
// folder must exist.
func (s *Store) Move(ctx context.Context, src, dst string, overwrite bool) error {
	return s.moveOrCopy(ctx, src, dst, overwrite, true)
}

// Copy copies the object or folder at src to dst, as Move does. Blobs are
// immutable, so an object's copy shares its bytes by a hard link.
func (s *Store) Copy(ctx context.Context, src, dst string, overwrite bool) error {
	return s.moveOrCopy(ctx, src, dst, overwrite, false)
}

func (s *Store) moveOrCopy(ctx context.Context, src, dst string, overwrite, move bool) error {
	if src == "" || dst == "" {
		return fmt.Errorf("%w: cannot move or copy the root", ErrConflict)
	}
	if src == dst || (len(dst) > len(src) && dst[:len(src)+1] == src+"/") {
		return fmt.Errorf("%w: destination inside source", ErrConflict)
	}
	s.tree.Lock()
	defer s.tree.Unlock()
	dstParent, _ := Split(dst)
	if _, err := s.StatDir(ctx, dstParent); err != nil {
		return fmt.Errorf("%w: destination folder missing", ErrConflict)
	}
	srcObj, srcErr := s.get(ctx, src)
	if srcErr != nil && !errors.Is(srcErr, ErrNotFound) {
		return srcErr
	}
	isObj := srcErr == nil
	if !isObj {
		if _, err := s.StatDir(ctx, src); err != nil {
			return err
		}
	}
	dstObj, dstObjErr := s.get(ctx, dst)
	_, dstDirErr := s.StatDir(ctx, dst)
	var added amount
	if exists := dstObjErr == nil || dstDirErr == nil; overwrite || !exists {
		var from, replaced *Object
		if isObj {
			from = &srcObj
		}
		if dstObjErr == nil && overwrite {
			replaced = &dstObj
		}
		var err error
		if added, err = s.checkMoveQuota(ctx, src, dst, from, replaced, dstDirErr == nil && overwrite, move); err != nil {
			return err
		}
	}
	if isObj && dstObjErr == nil && overwrite {
		// An object over an object: its sidecar replaces the other's in one
		// rename, which a failure undoes, so the old one is never missing.
		defer s.forgetAll()
		if err := s.moveObject(ctx, srcObj, dst, move); err != nil {
			return err
		}
		if dstObj.Blob != srcObj.Blob {
			s.removeBlob(dstObj.Blob)
		}
		return nil
	}
	if dstObjErr == nil || dstDirErr == nil {
		if !overwrite {
			return ErrExists
		}
		s.tree.Unlock()
		err := s.RemoveAll(ctx, dst)
		s.tree.Lock()
		if err != nil {
			return err
		}
	}
	// Moves and copies are rare next to stores and fetches: start the cache over.
	defer s.forgetAll()
	if isObj {
		return s.moveObject(ctx, srcObj, dst, move)
	}
	if move {
		return s.moveDir(ctx, src, dst, added)
	}
	return s.copyDir(ctx, src, dst)
}

func (s *Store) moveObject(ctx context.Context, o Object, dst string, move bool) error {
	src := o.Key
	o.Key = dst
	if !move {
		// Blobs are immutable: a copy shares its source's, and a blob is
		// removed only when no object names it. A copy of an object whose
		// bytes are lost would be a second broken object.
		if err := s.checkBlob(o); err != nil {
			return err
		}
		o.Created = time.Now()
		o.Updated = o.Created
	}
	placed, err := s.writeSidecar(o)
	if err != nil {
		return err
	}
	aside := &placement{s: s}
	if move {
		if aside, err = s.moveAside("objects/" + src); err != nil {
			return s.rollback(placed, err)
		}
	}
	err = s.update(ctx, func(tx index.Tx) error {
		if err := failpoint("index"); err != nil {
			return err
		}
		if move {
			if err := tx.DeleteObject(src); err != nil {
				return err
			}
			gone := o
			gone.Key = src
			if err := s.enqueue(ctx, tx, ChangeDeleted, gone); err != nil {
				return err
			}
		}
		replaced, found, err := tx.SwapObject(o)
		if err != nil {
			return err
		}
		// As for a store: stores racing on another node may have filled
		// a quota since checkMoveQuota. A move within a quota changes it
		// not.
		var same func(Quota) bool
		if move {
			same = func(q Quota) bool { return q.covers(src) }
		}
		if err := s.checkQuotaTx(tx, o.Key, o.Size-replaced.Size, !found, false, same); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, ChangeCreated, o)
	})
	if err != nil {
		// Put the source back first: if that cannot be done, the move stands
		// (its sidecar is at dst) and the restart completes it.
		if err = s.rollback(aside, err); isInDoubt(err) {
			return err
		}
		return s.rollback(placed, err)
	}
	placed.done()
	aside.discard()
	return nil
}

func (s *Store) moveDir(ctx context.Context, src, dst string, added amount) error {
	srcParent, _ := Split(src)
	dstParent, _ := Split(dst)
	// A folder only in the index (its tree gone behind our back) moves there alone.
	onDisk := !s.shared // a shared index is the only record
	if !onDisk {
		return s.moveDirIndex(ctx, src, dst, added)
	}
	if err := s.root.Rename("objects/"+src, "objects/"+dst); errors.Is(err, fs.ErrNotExist) {
		onDisk = false
	} else if err != nil {
		return fmt.Errorf("move folder: %w", mapErr(err))
	}
	// Undoing the move is moving it back.
	undo := &placement{s: s}
	if onDisk {
		undo.name, undo.prev = "objects/"+src, "objects/"+dst
	}
	err := s.syncDir(join("objects", srcParent))
	if err == nil {
		err = s.syncDir(join("objects", dstParent))
	}
	if err == nil {
		err = s.moveDirIndex(ctx, src, dst, added)
	}
	if err != nil {
		return s.rollback(undo, err)
	}
	return nil
}

// moveDirIndex moves the folder src to dst in the index and, as a store
// does, checks again in the transaction the quotas over dst that the move
// adds to (added is what checkMoveQuota counted) and the quotas below dst.
func (s *Store) moveDirIndex(ctx context.Context, src, dst string, added amount) error {
	return s.update(ctx, func(tx index.Tx) error {
		if err := failpoint("index"); err != nil {
			return err
		}
		if err := s.enqueueTree(ctx, tx, ChangeDeleted, src); err != nil {
			return err
		}
		if err := tx.MoveTree(src, dst); err != nil {
			return err
		}
		within := func(q Quota) bool { return q.covers(src) }
		if err := s.checkQuotaTx(tx, dst, added.bytes, added.objects > 0, true, within); err != nil {
			return err
		}
		return s.enqueueTree(ctx, tx, ChangeCreated, dst)
	})
}

// copyDir copies the folder src to dst, which must not exist. On failure
// the partial copy is removed.
func (s *Store) copyDir(ctx context.Context, src, dst string) error {
	err := s.copyDirTree(ctx, src, dst)
	if err != nil && !errors.Is(err, ErrExists) {
		if rerr := s.removeAllLocked(ctx, dst); rerr != nil && !errors.Is(rerr, ErrNotFound) {
			s.log.Warn("could not remove a partial folder copy", "key", UnescapeKey(dst), "err", rerr)
		}
	}
	return err
}

func (s *Store) copyDirTree(ctx context.Context, src, dst string) error {
	p, err := s.mkdirIndexed(ctx, dst)
	if err != nil {
		return err
	}
	p.done()
	children, err := s.List(ctx, src)
	if err != nil {
		return err
	}
	for _, c := range children {
		to := dst + "/" + c.Name
		if c.IsDir {
			err = s.copyDirTree(ctx, c.Key, to)
		} else {
			err = s.moveObject(ctx, c.Object, to, false)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
