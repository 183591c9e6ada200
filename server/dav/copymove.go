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
func (q *request) copyMove(move bool) error {
	t, err := q.parseTransfer(move)
	if err != nil {
		return err
	}
	// A COPY to a junk name is discarded like a PUT of one. A MOVE is not:
	// its source would be gone with nothing in its place.
	if !move && q.h.discardJunk(t.dst.key) {
		if _, err := q.stat(); err != nil {
			return err
		}
		q.w.WriteHeader(http.StatusCreated)
		return nil
	}
	if err := q.checkTransfer(&t); err != nil {
		return err
	}
	if err := q.transfer(t); err != nil {
		return err
	}
	if t.exists {
		q.w.WriteHeader(http.StatusNoContent)
	} else {
		q.w.WriteHeader(http.StatusCreated)
	}
	return nil
}

// A transfer is a COPY or MOVE from the request's target to dst.
type transfer struct {
	move      bool
	dst       *request // the destination, as if it were a request's target
	overwrite bool
	// Set by checkTransfer:
	depth  int      // 0 or -1 (infinity)
	src    resource // what is copied or moved
	exists bool     // something is at dst, to be replaced
}

// parseTransfer reads the headers of a COPY or MOVE, and checks what they
// name without looking in the store.
func (q *request) parseTransfer(move bool) (transfer, error) {
	if q.view != nil {
		if err := q.sourceFromView(move); err != nil {
			return transfer{}, err
		}
	}
	dst, err := q.destination()
	if err != nil {
		return transfer{}, err
	}
	overwrite, err := overwriteHeader(q.r)
	if err != nil {
		return transfer{}, err
	}
	if q.h.opts.HideJunk == JunkRefuse && isJunk(lastSegment(dst.key)) {
		return transfer{}, errJunk
	}
	return transfer{move: move, dst: dst, overwrite: overwrite}, nil
}

// sourceFromView retargets the request from a file of the @by-date view to
// its object, which may be copied into the tree. The view itself cannot
// change.
func (q *request) sourceFromView(move bool) error {
	self, _, err := q.viewResources(q.view, 0)
	if err != nil {
		return err
	}
	if move || self.dir {
		return errReadOnlyView
	}
	rel, ok := q.u.Inside(self.obj.Key)
	if !ok {
		return store.ErrNotFound
	}
	q.rel, q.key, q.view = rel, self.obj.Key, nil
	return nil
}

// destination resolves the Destination header into a request on the same
// user's tree, neither the root nor the source itself.
func (q *request) destination() (*request, error) {
	dest := q.r.Header.Get("Destination")
	if dest == "" {
		return nil, fmt.Errorf("%w: no Destination header", errBadRequest)
	}
	drel, dview, err := q.h.resolveURL(q.r, dest)
	if err != nil {
		return nil, err
	}
	if dview != nil {
		return nil, errReadOnlyView
	}
	if q.rel == "" || drel == "" {
		return nil, fmt.Errorf("%w: cannot copy or move the root", errForbidden)
	}
	dkey := q.u.Key(drel)
	if dkey == q.key {
		return nil, fmt.Errorf("%w: source and destination are the same", errForbidden)
	}
	return &request{h: q.h, w: q.w, r: q.r, u: q.u, rel: drel, key: dkey}, nil
}

// overwriteHeader reads the Overwrite header (RFC 4918 §10.6): T when absent.
func overwriteHeader(r *http.Request) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(r.Header.Get("Overwrite"))) {
	case "", "T":
		return true, nil
	case "F":
		return false, nil
	}
	return false, fmt.Errorf("%w: Overwrite must be T or F", errBadRequest)
}

// checkTransfer checks the source, the Depth it is given, the destination
// and the locks on both, and fills in what it learnt in t.
func (q *request) checkTransfer(t *transfer) error {
	src, err := q.stat()
	if err != nil {
		return err
	}
	d, err := depth(q.r, -1)
	if err != nil || d == 1 || (t.move && src.dir && d != -1) {
		return fmt.Errorf("%w: bad Depth for %s", errBadRequest, q.r.Method)
	}
	t.src, t.depth = src, d
	_, err = t.dst.stat()
	t.exists = err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if t.exists && !t.overwrite {
		return fmt.Errorf("%w: destination exists and Overwrite is F", errPrecondition)
	}
	if err := t.dst.parentExists(); err != nil {
		return err
	}
	targets := []lockTarget{{key: t.dst.key, below: true, member: true}}
	if t.move {
		targets = append(targets, lockTarget{key: q.key, below: true, member: true})
	}
	return q.preconditions(targets...)
}

// transfer copies or moves t.src to t.dst in the store. A moved resource
// leaves its locks behind: they are released.
func (q *request) transfer(t transfer) error {
	if err := q.ensureRoot(); err != nil {
		return err
	}
	ctx := q.r.Context()
	var err error
	switch {
	case t.move:
		err = q.h.st.Move(ctx, q.key, t.dst.key, t.overwrite)
	case t.src.dir && t.depth == 0:
		err = q.copyShallow(t.dst.key, t.exists, t.src.d.Props)
	default:
		err = q.copyDeep(t.dst.key, t.overwrite, t.src)
	}
	if err != nil {
		return err
	}
	if t.move {
		if err := q.h.st.ReleaseLocks(ctx, q.key); err != nil {
			q.h.log.Warn("could not release the locks of a moved resource", "key", store.UnescapeKey(q.key), "err", err)
		}
	}
	return nil
}

// copyDeep copies an object, or a collection with all its members (COPY
// Depth: infinity). The store's Copy makes the collection afresh, so its
// dead properties are set on the copy here.
func (q *request) copyDeep(dkey string, overwrite bool, src resource) error {
	ctx := q.r.Context()
	if err := q.h.st.Copy(ctx, q.key, dkey, overwrite); err != nil {
		return err
	}
	if src.dir && len(src.d.Props) > 2 {
		_, err := q.h.st.UpdateDir(ctx, dkey, func(n *store.Dir) bool { n.Props = src.d.Props; return true })
		return err
	}
	return nil
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
