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
func (q *request) lock() error {
	body, err := q.readXMLBody()
	if err != nil {
		return err
	}
	timeout := lockTimeout(q.r.Header.Get("Timeout"))
	if body == nil {
		return q.refresh(timeout)
	}
	li, d, err := q.parseLock(body)
	if err != nil {
		return err
	}
	created, err := q.checkLock()
	if err != nil {
		return err
	}
	now := time.Now()
	l := store.Lock{Token: newToken(), Root: q.key, ZeroDepth: d == 0, Shared: li.shared,
		Owner: li.owner, User: q.u.Name, Created: now, Expires: now.Add(timeout)}
	if err := q.createLock(l, created); err != nil {
		return err
	}
	q.w.Header().Set("Lock-Token", "<"+l.Token+">")
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	q.writeLockDiscovery(l, status)
	return nil
}

// parseLock reads a LOCK request's body and its Depth: 0 or -1 (infinity).
func (q *request) parseLock(body []byte) (lockInfo, int, error) {
	li, err := parseLockInfo(body)
	if err != nil {
		return li, 0, err
	}
	d, err := depth(q.r, -1)
	if err != nil || d == 1 {
		return li, 0, fmt.Errorf("%w: LOCK takes Depth 0 or infinity", errBadRequest)
	}
	// The owner is kept with the lock and echoed in every lockdiscovery:
	// it is held to the bound of a resource's dead properties.
	if int64(len(li.owner)) > q.h.opts.MaxPropsBytes {
		return li, 0, fmt.Errorf("%w: lock owner of %d bytes, the limit is %d", errFull, len(li.owner), q.h.opts.MaxPropsBytes)
	}
	return li, d, nil
}

// checkLock checks that the target may get one more lock, and reports
// whether the target is unmapped, to be created with the lock.
func (q *request) checkLock() (created bool, err error) {
	ctx := q.r.Context()
	if ls, err := q.h.st.Locks(ctx, q.key, false); err != nil {
		return false, err
	} else if len(ls) >= maxLocks {
		return false, fmt.Errorf("%w: %d locks already cover this resource", errFull, len(ls))
	}
	if q.h.opts.HideJunk == JunkRefuse && isJunk(lastSegment(q.key)) {
		return false, errJunk
	}
	_, err = q.stat()
	created = errors.Is(err, store.ErrNotFound)
	if err != nil && !created {
		return false, err
	}
	if created {
		if err := q.parentExists(); err != nil {
			return false, err
		}
	}
	return created, q.ifHolds()
}

// ifHolds checks the If: header, if there is one. Unlike preconditions it
// does not ask for the tokens of the locks on the target: whether a new lock
// conflicts with them is for CreateLock to decide, in one transaction.
func (q *request) ifHolds() error {
	h := q.r.Header.Get("If")
	if h == "" {
		return nil
	}
	lists, err := parseIf(h)
	if err != nil {
		return err
	}
	ok, err := q.evalIf(lists)
	if err == nil && !ok {
		err = errPrecondition
	}
	return err
}

// createLock stores l, and an empty resource at an unmapped target. A junk
// name gets its lock, not a file.
func (q *request) createLock(l store.Lock, created bool) error {
	ctx := q.r.Context()
	if err := q.h.st.CreateLock(ctx, l); err != nil {
		return err
	}
	if created && !q.h.discardJunk(q.key) {
		_, err := q.h.st.Put(ctx, q.key, strings.NewReader(""), store.Info{ContentType: typeByName(q.key), Size: 0})
		if err != nil {
			q.h.st.Unlock(ctx, l.Token)
			return err
		}
	}
	return nil
}

// refresh renews the lock whose token the If: header names and that covers
// the target, possibly from a member of the locked collection (litmus
// locks/indirect_refresh).
func (q *request) refresh(timeout time.Duration) error {
	h := q.r.Header.Get("If")
	if h == "" {
		return fmt.Errorf("%w: LOCK without a body refreshes the lock named in the If header", errBadRequest)
	}
	lists, err := parseIf(h)
	if err != nil {
		return err
	}
	for _, tok := range tokens(lists) {
		l, err := q.h.st.LockByToken(q.r.Context(), tok)
		if err != nil || !l.Covers(q.key) {
			continue
		}
		if l, err = q.h.st.RefreshLock(q.r.Context(), tok, time.Now().Add(timeout)); err != nil {
			return err
		}
		q.writeLockDiscovery(l, http.StatusOK)
		return nil
	}
	return fmt.Errorf("%w: no lock of the If: header covers this resource", errPrecondition)
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
func (q *request) unlock() error {
	tok := strings.TrimSpace(q.r.Header.Get("Lock-Token"))
	tok = strings.TrimSuffix(strings.TrimPrefix(tok, "<"), ">")
	if tok == "" {
		return fmt.Errorf("%w: UNLOCK needs a Lock-Token header", errBadRequest)
	}
	ctx := q.r.Context()
	l, err := q.h.st.LockByToken(ctx, tok)
	if err != nil || !l.Covers(q.key) {
		return errNoSuchLock // §9.11.1: the token does not name a lock on this resource
	}
	if err := q.h.st.Unlock(ctx, tok); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
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
