package dav

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/attachd/attachd/server/store"
)

// copyMove answers COPY and MOVE (RFC 4918 §9.8, §9.9) through the store:
// a copied object shares its immutable bytes, a moved folder is one rename.
// The Destination is resolved by the same canonicaliser and user root as the
// request path, so it cannot leave the user's tree. An absent Overwrite
// header means T (§10.6; x/net/webdav reads it as F: golang/go #66059).
func (q *request) copyMove(move bool) {
	ctx := q.r.Context()
	if q.view != nil {
		// A file of the @by-date view may be copied into the tree: the
		// source is its object. The view itself cannot change.
		self, _, err := q.viewResources(q.view, 0)
		if err != nil {
			q.fail(err)
			return
		}
		if move || self.dir {
			q.fail(errReadOnlyView)
			return
		}
		rel, ok := q.u.Inside(self.obj.Key)
		if !ok {
			q.fail(store.ErrNotFound)
			return
		}
		q.rel, q.key, q.view = rel, self.obj.Key, nil
	}
	dest := q.r.Header.Get("Destination")
	if dest == "" {
		q.fail(fmt.Errorf("%w: no Destination header", errBadRequest))
		return
	}
	drel, dview, err := q.h.resolveURL(q.r, dest)
	if err != nil {
		q.fail(err)
		return
	}
	if dview != nil {
		q.fail(errReadOnlyView)
		return
	}
	if q.rel == "" || drel == "" {
		q.fail(fmt.Errorf("%w: cannot copy or move the root", errForbidden))
		return
	}
	dkey := q.u.Key(drel)
	if dkey == q.key {
		q.fail(fmt.Errorf("%w: source and destination are the same", errForbidden))
		return
	}
	overwrite := true
	switch strings.ToUpper(strings.TrimSpace(q.r.Header.Get("Overwrite"))) {
	case "", "T":
	case "F":
		overwrite = false
	default:
		q.fail(fmt.Errorf("%w: Overwrite must be T or F", errBadRequest))
		return
	}
	if q.h.opts.HideJunk == JunkRefuse && isJunk(lastSegment(dkey)) {
		q.fail(errJunk)
		return
	}
	// A COPY to a junk name is discarded like a PUT of one. A MOVE is not:
	// its source would be gone with nothing in its place.
	if !move && q.h.discardJunk(dkey) {
		if _, err := q.stat(); err != nil {
			q.fail(err)
			return
		}
		q.w.WriteHeader(http.StatusCreated)
		return
	}
	src, err := q.stat()
	if err != nil {
		q.fail(err)
		return
	}
	d, err := depth(q.r, -1)
	if err != nil || d == 1 || (move && src.dir && d != -1) {
		q.fail(fmt.Errorf("%w: bad Depth for %s", errBadRequest, q.r.Method))
		return
	}
	dq := &request{h: q.h, w: q.w, r: q.r, u: q.u, rel: drel, key: dkey}
	_, derr := dq.stat()
	exists := derr == nil
	if derr != nil && !errors.Is(derr, store.ErrNotFound) {
		q.fail(derr)
		return
	}
	if exists && !overwrite {
		q.fail(fmt.Errorf("%w: destination exists and Overwrite is F", errPrecondition))
		return
	}
	if err := dq.parentExists(); err != nil {
		q.fail(err)
		return
	}
	targets := []lockTarget{{key: dkey, below: true, member: true}}
	if move {
		targets = append(targets, lockTarget{key: q.key, below: true, member: true})
	}
	if err := q.preconditions(targets...); err != nil {
		q.fail(err)
		return
	}
	if err := q.ensureRoot(); err != nil {
		q.fail(err)
		return
	}
	switch {
	case move:
		err = q.h.st.Move(ctx, q.key, dkey, overwrite)
	case src.dir && d == 0:
		err = q.copyShallow(dkey, exists, src.d.Props)
	default:
		err = q.h.st.Copy(ctx, q.key, dkey, overwrite)
		if err == nil && src.dir && len(src.d.Props) > 2 {
			_, err = q.h.st.UpdateDir(ctx, dkey, func(n *store.Dir) bool { n.Props = src.d.Props; return true })
		}
	}
	if err != nil {
		q.fail(err)
		return
	}
	if move {
		if err := q.h.st.ReleaseLocks(ctx, q.key); err != nil {
			q.h.log.Warn("could not release the locks of a moved resource", "key", q.key, "err", err)
		}
	}
	if exists {
		q.w.WriteHeader(http.StatusNoContent)
	} else {
		q.w.WriteHeader(http.StatusCreated)
	}
}

// copyShallow copies a collection without its members (COPY Depth: 0).
func (q *request) copyShallow(dkey string, exists bool, props []byte) error {
	ctx := q.r.Context()
	if exists {
		if err := q.h.st.RemoveAll(ctx, dkey); err != nil {
			return err
		}
	}
	if err := q.h.st.Mkdir(ctx, dkey); err != nil {
		return err
	}
	if len(props) > 2 {
		_, err := q.h.st.UpdateDir(ctx, dkey, func(n *store.Dir) bool { n.Props = props; return true })
		return err
	}
	return nil
}
