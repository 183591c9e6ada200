package auth

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"
)

// ErrRateLimited is matched by the error of a login refused because its
// client address or user name failed too often.
var ErrRateLimited = errors.New("too many failed logins")

// RateLimitError is a login refused before its password was checked.
type RateLimitError struct {
	RetryAfter time.Duration // until the attempt would be checked again
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: retry after %v", ErrRateLimited, e.RetryAfter.Round(time.Second))
}

func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// maxBuckets caps how many client addresses the limiter remembers, so that
// failures from many addresses cannot grow memory without bound. Past it,
// idle buckets are dropped first, then arbitrary ones: an attacker with that
// many addresses gets some attempts back, but the per-name buckets still hold.
const maxBuckets = 10000

// failureLimiter is a token bucket per key (a client address, a user name):
// each failed login takes a token, a bucket holds at most perMinute tokens and
// refills at perMinute per minute. A full bucket carries no state and may be
// forgotten.
type failureLimiter struct {
	perMinute float64
	max       int
	now       func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

func newFailureLimiter(perMinute int) *failureLimiter {
	return &failureLimiter{perMinute: float64(perMinute), max: maxBuckets, now: time.Now, buckets: map[string]*bucket{}}
}

// refill brings b up to date at now and reports whether it is full.
func (l *failureLimiter) refill(b *bucket, now time.Time) bool {
	b.tokens = min(l.perMinute, b.tokens+now.Sub(b.at).Minutes()*l.perMinute)
	b.at = now
	return b.tokens >= l.perMinute
}

// take takes one token from the bucket of every key, or from none if one of
// them is empty; then it returns how long until that bucket has a token.
// Tokens are taken before the password is checked, so that concurrent
// attempts cannot all pass while the first ones are still being hashed.
func (l *failureLimiter) take(keys ...string) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	bs := make([]*bucket, len(keys))
	for i, k := range keys {
		b := l.buckets[k]
		if b == nil {
			l.makeRoom()
			b = &bucket{tokens: l.perMinute, at: now}
			l.buckets[k] = b
		}
		l.refill(b, now)
		if b.tokens < 1 {
			wait = max(wait, time.Duration(math.Ceil((1-b.tokens)/l.perMinute*float64(time.Minute))))
		}
		bs[i] = b
	}
	if wait > 0 {
		return wait, false
	}
	for _, b := range bs {
		b.tokens--
	}
	return 0, true
}

// refund gives back the tokens take took for an attempt that succeeded:
// only failures count.
func (l *failureLimiter) refund(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		if b := l.buckets[k]; b != nil {
			l.refill(b, now)
			b.tokens = min(l.perMinute, b.tokens+1)
		}
	}
}

// makeRoom makes room for one more bucket. Called with l.mu held.
func (l *failureLimiter) makeRoom() {
	if len(l.buckets) < l.max {
		return
	}
	now := l.now()
	for k, b := range l.buckets {
		if l.refill(b, now) {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.max {
			break
		}
		delete(l.buckets, k)
	}
}

// len returns how many buckets are kept, for tests.
func (l *failureLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// addrKey is the limiter key of a client address: the address itself for
// IPv4, its /64 for IPv6, where one host commonly owns the whole prefix.
func addrKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + a.String()
}
