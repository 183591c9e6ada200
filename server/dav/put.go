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
func (q *request) put() error {
	if q.rel == "" {
		return errNotAllowed
	}
	if q.h.opts.HideJunk == JunkRefuse && isJunk(lastSegment(q.key)) {
		return errJunk
	}
	if q.h.discardJunk(q.key) {
		return q.discard()
	}
	old, exists, err := q.checkPut()
	if err != nil {
		return err
	}
	info, hasMtime := q.putInfo(old, exists)
	o, err := q.commitBody(info)
	if err != nil {
		return err
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
	return nil
}

// checkPut checks that a PUT may write the target, before its body is read,
// and returns the object it replaces, if one exists.
func (q *request) checkPut() (old store.Object, exists bool, err error) {
	// A new name (most PUTs) is known new from the data directory, without
	// asking the index twice for nothing.
	if !q.h.st.Absent(q.key) {
		old, err = q.h.st.Stat(q.r.Context(), q.key)
		exists = err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return old, false, err
		}
		if !exists {
			if _, err := q.h.st.StatDir(q.r.Context(), q.key); err == nil {
				return old, false, fmt.Errorf("%w: a collection is here", errNotAllowed)
			}
		}
	}
	if !exists {
		if err := q.parentExists(); err != nil {
			return old, false, err
		}
	}
	etag := ""
	if exists {
		etag = old.ETag()
	}
	if err := httpConditions(q.r, etag); err != nil {
		return old, exists, err
	}
	if err := q.preconditions(lockTarget{key: q.key, member: !exists}); err != nil {
		return old, exists, err
	}
	if err := q.h.st.CheckSize(q.r.ContentLength); err != nil {
		return old, exists, err
	}
	return old, exists, q.h.st.CheckQuota(q.r.Context(), q.key, q.r.ContentLength)
}

// putInfo returns what is stored with the PUT's body, and whether the client
// sent the modification time.
func (q *request) putInfo(old store.Object, exists bool) (store.Info, bool) {
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
	return info, hasMtime
}

// commitBody receives the request body into a store upload and commits it
// at the target only if it arrived whole.
func (q *request) commitBody(info store.Info) (store.Object, error) {
	up, err := q.h.st.Receive(q.r.Body, q.r.ContentLength)
	if err != nil {
		return store.Object{}, err
	}
	defer up.Abort()
	return up.Commit(q.r.Context(), q.key, info)
}

// discard answers a PUT of junk that is not kept: the body is read (within
// the store's maximum) so that the client sees its upload go through, and
// thrown away. A junk file stored before hide mode is left as it was.
func (q *request) discard() error {
	if err := q.h.st.Discard(q.r.Body, q.r.ContentLength); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusCreated)
	return nil
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
	ok, err := q.h.st.DirExists(q.r.Context(), q.u.Key(parentRel))
	if err == nil && !ok {
		err = fmt.Errorf("%w: parent collection missing", store.ErrConflict)
	}
	return err
}
