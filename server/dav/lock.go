package dav

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/attachd/attachd/server/store"
)

// Lock timeouts. Locks persist across restarts, so one a crashed client
// never releases must still end: longer requests are cut to maxLockTimeout.
const (
	defaultLockTimeout = time.Hour
	maxLockTimeout     = 24 * time.Hour
)

// maxLocks bounds the live locks covering one resource. Shared locks do not
// conflict, each is kept in the index and each is in every lockdiscovery of
// the resource, so without a bound one client could pile them up as it
// could dead properties. No client holds more than a few.
const maxLocks = 64

// lock answers LOCK (RFC 4918 §9.10): a new exclusive or shared write lock,
// or with no body the refresh of one named in the If: header. LOCK on an
// unmapped URL creates an empty resource and answers 201 (§7.3), which
// davfs2 and Finder rely on before their PUT (docs/webdav-clients.md §4.5).
func (q *request) lock() {
	ctx := q.r.Context()
	body, err := q.readXMLBody()
	if err != nil {
		q.fail(err)
		return
	}
	timeout := lockTimeout(q.r.Header.Get("Timeout"))
	if body == nil {
		q.refresh(timeout)
		return
	}
	li, err := parseLockInfo(body)
	if err != nil {
		q.fail(err)
		return
	}
	d, err := depth(q.r, -1)
	if err != nil || d == 1 {
		q.fail(fmt.Errorf("%w: LOCK takes Depth 0 or infinity", errBadRequest))
		return
	}
	// The owner is kept with the lock and echoed in every lockdiscovery:
	// it is held to the bound of a resource's dead properties.
	if int64(len(li.owner)) > q.h.opts.MaxPropsBytes {
		q.fail(fmt.Errorf("%w: lock owner of %d bytes, the limit is %d", errFull, len(li.owner), q.h.opts.MaxPropsBytes))
		return
	}
	if ls, err := q.h.st.Locks(ctx, q.key, false); err != nil {
		q.fail(err)
		return
	} else if len(ls) >= maxLocks {
		q.fail(fmt.Errorf("%w: %d locks already cover this resource", errFull, len(ls)))
		return
	}
	if q.h.opts.HideJunk == JunkRefuse && isJunk(lastSegment(q.key)) {
		q.fail(errJunk)
		return
	}
	_, err = q.stat()
	created := errors.Is(err, store.ErrNotFound)
	if err != nil && !created {
		q.fail(err)
		return
	}
	if created {
		if err := q.parentExists(); err != nil {
			q.fail(err)
			return
		}
	}
	if h := q.r.Header.Get("If"); h != "" {
		lists, err := parseIf(h)
		if err == nil {
			var ok bool
			if ok, err = q.evalIf(lists); err == nil && !ok {
				err = errPrecondition
			}
		}
		if err != nil {
			q.fail(err)
			return
		}
	}
	now := time.Now()
	l := store.Lock{Token: newToken(), Root: q.key, ZeroDepth: d == 0, Shared: li.shared,
		Owner: li.owner, User: q.u.Name, Created: now, Expires: now.Add(timeout)}
	if err := q.h.st.CreateLock(ctx, l); err != nil {
		q.fail(err)
		return
	}
	if created && !q.h.discardJunk(q.key) { // a junk name gets its lock, not a file
		_, err := q.h.st.Put(ctx, q.key, strings.NewReader(""), store.Info{ContentType: typeByName(q.key), Size: 0})
		if err != nil {
			q.h.st.Unlock(ctx, l.Token)
			q.fail(err)
			return
		}
	}
	q.w.Header().Set("Lock-Token", "<"+l.Token+">")
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	q.writeLockDiscovery(l, status)
}

// refresh renews the lock whose token the If: header names and that covers
// the target, possibly from a member of the locked collection (litmus
// locks/indirect_refresh).
func (q *request) refresh(timeout time.Duration) {
	h := q.r.Header.Get("If")
	if h == "" {
		q.fail(fmt.Errorf("%w: LOCK without a body refreshes the lock named in the If header", errBadRequest))
		return
	}
	lists, err := parseIf(h)
	if err != nil {
		q.fail(err)
		return
	}
	for _, tok := range tokens(lists) {
		l, err := q.h.st.LockByToken(q.r.Context(), tok)
		if err != nil || !l.Covers(q.key) {
			continue
		}
		if l, err = q.h.st.RefreshLock(q.r.Context(), tok, time.Now().Add(timeout)); err != nil {
			q.fail(err)
			return
		}
		q.writeLockDiscovery(l, http.StatusOK)
		return
	}
	q.fail(fmt.Errorf("%w: no lock of the If: header covers this resource", errPrecondition))
}

func (q *request) writeLockDiscovery(l store.Lock, status int) {
	root, _ := q.href(l.Root, false)
	b := []byte(xmlHeader + `<D:prop xmlns:D="DAV:"><D:lockdiscovery>`)
	b = appendActiveLock(b, l, root, time.Now().Add(-time.Second/2))
	b = append(b, "</D:lockdiscovery></D:prop>\n"...)
	q.w.Header().Set("Content-Type", xmlContentType)
	q.w.WriteHeader(status)
	q.w.Write(b)
}

// unlock answers UNLOCK (RFC 4918 §9.11).
func (q *request) unlock() {
	tok := strings.TrimSpace(q.r.Header.Get("Lock-Token"))
	tok = strings.TrimSuffix(strings.TrimPrefix(tok, "<"), ">")
	if tok == "" {
		q.fail(fmt.Errorf("%w: UNLOCK needs a Lock-Token header", errBadRequest))
		return
	}
	ctx := q.r.Context()
	l, err := q.h.st.LockByToken(ctx, tok)
	if err != nil || !l.Covers(q.key) {
		// §9.11.1: the token does not name a lock on this resource.
		http.Error(q.w, "no such lock on this resource", http.StatusConflict)
		return
	}
	if err := q.h.st.Unlock(ctx, tok); err != nil && !errors.Is(err, store.ErrNotFound) {
		q.fail(err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

// lockTimeout reads a Timeout header (RFC 4918 §10.7): the first value we
// understand, capped at maxLockTimeout.
func lockTimeout(h string) time.Duration {
	for _, v := range strings.Split(h, ",") {
		v = strings.TrimSpace(v)
		if strings.EqualFold(v, "Infinite") {
			return maxLockTimeout
		}
		if n, ok := strings.CutPrefix(v, "Second-"); ok {
			if s, err := strconv.ParseInt(n, 10, 64); err == nil && s > 0 {
				return min(time.Duration(s)*time.Second, maxLockTimeout)
			}
		}
	}
	return defaultLockTimeout
}

// newToken returns a fresh lock token: a random (version 4) UUID URN in the
// opaquelocktoken scheme clients expect (RFC 4918 §20.5 allows any URI).
func newToken() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("opaquelocktoken:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
