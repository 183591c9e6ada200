package dav

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/attachd/attachd/server/store"
)

// delete answers DELETE (RFC 4918 §9.6) and releases the locks on what it
// removed (x/net/webdav leaves them: golang/go #42839).
func (q *request) delete() error {
	ctx := q.r.Context()
	if q.rel == "" {
		return fmt.Errorf("%w: cannot delete the root", errForbidden)
	}
	res, err := q.stat()
	if err != nil {
		return err
	}
	if d, err := depth(q.r, -1); err != nil || (res.dir && d != -1) {
		return fmt.Errorf("%w: DELETE of a collection takes Depth: infinity", errBadRequest)
	}
	etag := ""
	if !res.dir {
		etag = res.obj.ETag()
	}
	if err := httpConditions(q.r, etag); err != nil {
		return err
	}
	if err := q.preconditions(lockTarget{key: q.key, below: true, member: true}); err != nil {
		return err
	}
	if err := q.h.st.RemoveAll(ctx, q.key); err != nil {
		return err
	}
	if err := q.h.st.ReleaseLocks(ctx, q.key); err != nil {
		q.h.log.Warn("could not release the locks of a deleted resource", "key", store.UnescapeKey(q.key), "err", err)
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// mkcol answers MKCOL (RFC 4918 §9.3).
func (q *request) mkcol() error {
	ctx := q.r.Context()
	if q.r.ContentLength > 0 || (q.r.ContentLength < 0 && q.r.Body != http.NoBody) {
		// §9.3.1: a body we do not understand is 415.
		var one [1]byte
		if n, _ := q.r.Body.Read(one[:]); n > 0 {
			return errUnsupported
		}
	}
	if q.rel == "" {
		return fmt.Errorf("%w: the root exists", errNotAllowed)
	}
	if q.h.opts.HideJunk == JunkRefuse && isJunk(lastSegment(q.key)) {
		return errJunk
	}
	if q.h.discardJunk(q.key) {
		q.w.WriteHeader(http.StatusCreated)
		return nil
	}
	if _, err := q.stat(); err == nil {
		return fmt.Errorf("%w: already exists", errNotAllowed)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := q.parentExists(); err != nil {
		return err
	}
	if err := q.preconditions(lockTarget{key: q.key, member: true}); err != nil {
		return err
	}
	if err := q.ensureRoot(); err != nil {
		return err
	}
	switch err := q.h.st.Mkdir(ctx, q.key); {
	case errors.Is(err, store.ErrExists):
		return fmt.Errorf("%w: already exists", errNotAllowed)
	case err != nil:
		return err
	}
	q.w.WriteHeader(http.StatusCreated)
	return nil
}

// ensureRoot creates the folders of the user's root if nothing was stored
// there yet, so that a new scoped user can make folders at their top.
func (q *request) ensureRoot() error {
	if q.u.Root == "" {
		return nil
	}
	ctx := q.r.Context()
	if _, err := q.h.st.StatDir(ctx, q.u.Root); err == nil {
		return nil
	}
	ps := append(store.Parents(q.u.Root), q.u.Root)
	for i := len(ps) - 1; i >= 0; i-- {
		if o, err := q.h.st.Stat(ctx, ps[i]); err == nil {
			return fmt.Errorf("%w: %q is an object", store.ErrConflict, o.Key)
		}
		if err := q.h.st.Mkdir(ctx, ps[i]); err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
	}
	return nil
}
