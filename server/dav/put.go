package dav

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/attachd/attachd/server/store"
)

// put answers PUT (RFC 4918 §9.7) atomically: the body goes to a store
// upload, and only a body that arrived whole, with as many bytes as
// Content-Length said, is committed (x/net/webdav truncates the file first
// and writes in place: docs/webdav-clients.md §3.1). The old version stays until the
// commit replaces it in one step. 201 for a new resource, 204 for an overwrite.
func (q *request) put() {
	ctx := q.r.Context()
	if q.rel == "" {
		q.fail(errNotAllowed)
		return
	}
	if q.h.opts.HideJunk == JunkRefuse && isJunk(lastSegment(q.key)) {
		q.fail(errJunk)
		return
	}
	if q.h.discardJunk(q.key) {
		q.discard()
		return
	}
	old, err := q.h.st.Stat(ctx, q.key)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		q.fail(err)
		return
	}
	if !exists {
		if _, err := q.h.st.StatDir(ctx, q.key); err == nil {
			q.fail(fmt.Errorf("%w: a collection is here", errNotAllowed))
			return
		}
		if err := q.parentExists(); err != nil {
			q.fail(err)
			return
		}
	}
	etag := ""
	if exists {
		etag = old.ETag()
	}
	if err := httpConditions(q.r, etag); err != nil {
		q.fail(err)
		return
	}
	if err := q.preconditions(lockTarget{key: q.key, member: !exists}); err != nil {
		q.fail(err)
		return
	}
	if err := q.h.st.CheckSize(q.r.ContentLength); err != nil {
		q.fail(err)
		return
	}
	info := store.Info{ContentType: q.r.Header.Get("Content-Type"), Size: q.r.ContentLength}
	if info.ContentType == "" {
		info.ContentType = typeByName(q.key)
	}
	mtime, hasMtime := ocMtime(q.r)
	info.ModTime = mtime
	if exists {
		// New bytes for the same resource: its dead properties and its Kazoo
		// metadata stay with it, as Apache keeps properties over a PUT.
		info.Props, info.Meta, info.DocID, info.MediaID = old.Props, old.Meta, old.DocID, old.MediaID
	}
	up, err := q.h.st.Receive(q.r.Body, q.r.ContentLength)
	if err != nil {
		q.fail(err)
		return
	}
	defer up.Abort()
	o, err := up.Commit(ctx, q.key, info)
	if err != nil {
		q.fail(err)
		return
	}
	q.w.Header().Set("ETag", o.ETag())
	if hasMtime {
		q.w.Header().Set("X-OC-Mtime", "accepted") // what ownCloud clients and rclone look for
	}
	if exists {
		q.w.WriteHeader(http.StatusNoContent)
	} else {
		q.w.WriteHeader(http.StatusCreated)
	}
}

// discard answers a PUT of junk that is not kept: the body is read (within
// the store's maximum) so that the client sees its upload go through, and
// thrown away. A junk file stored before hide mode is left as it was.
func (q *request) discard() {
	if err := q.h.st.Discard(q.r.Body, q.r.ContentLength); err != nil {
		q.fail(err)
		return
	}
	q.w.WriteHeader(http.StatusCreated)
}

// ocMtime reads X-OC-Mtime, the ownCloud header in which rclone and the
// ownCloud/Nextcloud clients send a file's modification time as Unix seconds.
func ocMtime(r *http.Request) (time.Time, bool) {
	v := strings.TrimSpace(r.Header.Get("X-OC-Mtime"))
	if v == "" {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// parentExists checks that the target's parent collection exists (RFC 4918
// §9.7.1: 409 otherwise). The user's root counts as existing even when
// nothing is stored there yet.
func (q *request) parentExists() error {
	parentRel, _ := store.Split(q.rel)
	if parentRel == "" {
		return nil
	}
	parent := q.u.Key(parentRel)
	if _, err := q.h.st.StatDir(q.r.Context(), parent); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: parent collection missing", store.ErrConflict)
		}
		return err
	}
	return nil
}
