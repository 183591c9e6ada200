package dav

import (
	"errors"
	"net/http"
	"strings"

	"github.com/attachd/attachd/server/store"
)

// lockTarget is a resource a write changes, for the lock check.
type lockTarget struct {
	key string
	// below: the write changes everything under key too (DELETE, MOVE, an
	// overwritten folder), so locks on its members count.
	below bool
	// member: the write adds or removes key from its parent folder, so a
	// depth-0 lock on the parent counts too (RFC 4918 §7.4).
	member bool
}

// preconditions evaluates the If: header against the resources it names and
// then checks that every lock on the targets has one of its tokens submitted.
// A false If: header is errPrecondition (412), a missing token errLocked (423).
func (q *request) preconditions(targets ...lockTarget) error {
	var lists []ifList
	if h := q.r.Header.Get("If"); h != "" {
		var err error
		if lists, err = parseIf(h); err != nil {
			return err
		}
		ok, err := q.evalIf(lists)
		if err != nil {
			return err
		}
		if !ok {
			return errPrecondition
		}
	}
	submitted := tokens(lists)
	for _, t := range targets {
		if err := q.checkLocks(t, submitted); err != nil {
			return err
		}
	}
	return nil
}

// evalIf reports whether any list of the If: header holds.
func (q *request) evalIf(lists []ifList) (bool, error) {
	ctx := q.r.Context()
	for _, l := range lists {
		key := q.key
		if l.tag != "" {
			rel, view, err := q.h.resolveURL(q.r, l.tag)
			if err != nil || view != nil {
				continue // names nothing this user can lock: the list is false
			}
			key = q.u.Key(rel)
		} else if q.view != nil {
			continue
		}
		var locks []store.Lock
		var etag string
		var err error
		if locks, err = q.h.st.Locks(ctx, key, false); err != nil {
			return false, err
		}
		if o, err := q.h.st.Stat(ctx, key); err == nil {
			etag = o.ETag()
		} else if !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		holds := true
		for _, c := range l.conds {
			var match bool
			if c.Token != "" {
				for _, lk := range locks {
					match = match || lk.Token == c.Token
				}
			} else {
				match = etag != "" && strings.TrimPrefix(c.ETag, "W/") == etag
			}
			if match == c.Not {
				holds = false
				break
			}
		}
		if holds {
			return true, nil
		}
	}
	return false, nil
}

// checkLocks checks that each lock touching t has a submitted token; for
// shared locks, a token of any of the shared locks on the same resource.
func (q *request) checkLocks(t lockTarget, submitted []string) error {
	ctx := q.r.Context()
	locks, err := q.h.st.Locks(ctx, t.key, t.below)
	if err != nil {
		return err
	}
	if t.member && t.key != "" {
		parent, _ := store.Split(t.key)
		pl, err := q.h.st.Locks(ctx, parent, false)
		if err != nil {
			return err
		}
		for _, l := range pl {
			if l.Root == parent && l.ZeroDepth {
				locks = append(locks, l)
			}
		}
	}
	if len(locks) == 0 {
		return nil
	}
	has := func(tok string) bool {
		for _, s := range submitted {
			if s == tok {
				return true
			}
		}
		return false
	}
	satisfied := map[string]bool{}
	for _, l := range locks {
		if has(l.Token) {
			satisfied[l.Root] = true
		}
	}
	for _, l := range locks {
		if !satisfied[l.Root] {
			href, _ := q.href(l.Root, false)
			return &lockedError{href: href}
		}
	}
	return nil
}

// lockedError is errLocked naming the locked resource (RFC 4918 §16
// lock-token-submitted).
type lockedError struct{ href string }

func (e *lockedError) Error() string { return errLocked.Error() }
func (e *lockedError) Unwrap() error { return errLocked }

// httpConditions applies If-Match and If-None-Match (RFC 9110 §13) for a
// write to a resource that exists with etag, or not at all ("").
func httpConditions(r *http.Request, etag string) error {
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagListMatch(im, etag) {
			return errPrecondition
		}
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagListMatch(inm, etag) {
			return errPrecondition
		}
	}
	return nil
}

func etagListMatch(list, etag string) bool {
	if etag == "" {
		return false
	}
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
