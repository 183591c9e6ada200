// Package auth checks who is asking: Basic credentials against the configured
// users, client addresses against the allow-list, and what subtree and
// permissions each user has. Kazoo and WebDAV use the same rules.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/attachd/attachd/server/store"
)

// Errors from Authenticate.
var (
	ErrNoCredentials  = errors.New("authentication required")
	ErrBadCredentials = errors.New("wrong user name or password")
	ErrAddress        = errors.New("client address not allowed")
)

// User is an authenticated caller, or the anonymous one when no users are configured.
type User struct {
	Name  string // "" for anonymous
	Root  string // key of the subtree the user sees as its root; "" for all
	Write bool   // may store, change and delete
	// Credential changes when the password does (a digest of its hash):
	// what a session signs, so that a new password ends the old sessions.
	Credential string
}

// Key maps a key as the user sees it to the key in the store.
func (u *User) Key(k string) string {
	switch {
	case u.Root == "":
		return k
	case k == "":
		return u.Root
	}
	return u.Root + "/" + k
}

// Inside reports whether a store key is within the user's root, and returns
// it relative to that root.
func (u *User) Inside(k string) (string, bool) {
	switch {
	case u.Root == "":
		return k, true
	case k == u.Root:
		return "", true
	case strings.HasPrefix(k, u.Root+"/"):
		return k[len(u.Root)+1:], true
	}
	return "", false
}

type account struct {
	user User
	hash []byte
}

// Authenticator holds the users and the allow-list.
type Authenticator struct {
	users map[string]*account
	allow AllowList
	// verified caches sha256(name:password) of credentials that bcrypt has
	// accepted: Kazoo sends Basic auth with every request, and bcrypt costs
	// tens of milliseconds by design.
	verified sync.Map // [32]byte → *account
	// failures limits failed logins per client address and per user name,
	// each of which costs a bcrypt; nil: no limit.
	failures *failureLimiter

	// checking holds the credentials being checked now: concurrent requests
	// with the same ones (Kazoo's burst after a restart) wait for that one
	// bcrypt rather than each spend one, and a token of the limiter.
	mu       sync.Mutex
	checking map[[32]byte]*check
}

// check is one check of credentials in progress.
type check struct {
	done chan struct{}
	user *User
	err  error
}

// Account is a configured login: a [[users]] table.
type Account struct {
	Name         string
	PasswordHash string // bcrypt
	Root         string // the subtree it sees, as a path ("/" for all)
	Write        bool   // permissions = "rw"
}

// credential digests a password hash: enough to tell two apart, nothing
// to attack the password with.
func credential(passwordHash string) string {
	sum := sha256.Sum256([]byte("attachd credential\x00" + passwordHash))
	return hex.EncodeToString(sum[:8])
}

// New builds an Authenticator for the accounts and the allow-list.
func New(accounts []Account, allowFrom []string) (*Authenticator, error) {
	a := &Authenticator{users: map[string]*account{}}
	for _, u := range accounts {
		root, err := store.CanonicalPath(u.Root)
		if err != nil {
			return nil, fmt.Errorf("user %q: root %q: %w", u.Name, u.Root, err)
		}
		a.users[u.Name] = &account{user: User{Name: u.Name, Root: root, Write: u.Write, Credential: credential(u.PasswordHash)},
			hash: []byte(u.PasswordHash)}
	}
	allow, err := ParseAllowList(allowFrom)
	if err != nil {
		return nil, fmt.Errorf("allow_from: %w", err)
	}
	a.allow = allow
	return a, nil
}

// LimitFailures lets each client address, and each user name, fail at most
// perMinute logins a minute (with bursts of as many); attempts past that are
// refused with a *RateLimitError before any password is checked. Credentials
// already verified are never limited. 0 removes the limit.
func (a *Authenticator) LimitFailures(perMinute int) {
	a.failures = nil
	if perMinute > 0 {
		a.failures = newFailureLimiter(perMinute)
	}
}

// KeepFailures makes a count failed logins on from old's count, if both
// limit them: a new Authenticator built by a reload (SIGHUP) must not
// forgive an attacker's failures so far.
func (a *Authenticator) KeepFailures(old *Authenticator) {
	if a.failures != nil && old != nil && old.failures != nil && old.failures.perMinute == a.failures.perMinute {
		a.failures = old.failures
	}
}

// AllowList is a list of client address prefixes.
type AllowList []netip.Prefix

// ParseAllowList parses addresses and CIDRs.
func ParseAllowList(entries []string) (AllowList, error) {
	var l AllowList
	for _, s := range entries {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			addr, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return nil, fmt.Errorf("%q is not a CIDR or an address", s)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		l = append(l, p.Masked())
	}
	return l, nil
}

// Contains reports whether the client at remoteAddr (host:port) is in l.
func (l AllowList) Contains(remoteAddr string) bool {
	addr, ok := clientAddr(remoteAddr)
	if !ok {
		return false
	}
	for _, p := range l {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddr parses the address of a request's RemoteAddr.
func clientAddr(remoteAddr string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// IsLoopback reports whether the client at remoteAddr is this host.
func IsLoopback(remoteAddr string) bool {
	addr, ok := clientAddr(remoteAddr)
	return ok && addr.IsLoopback()
}

// Enabled reports whether any users are configured.
func (a *Authenticator) Enabled() bool { return len(a.users) > 0 }

// AddressAllowed reports whether the client at remoteAddr (host:port) may connect.
func (a *Authenticator) AddressAllowed(remoteAddr string) bool {
	return len(a.allow) == 0 || a.allow.Contains(remoteAddr)
}

var anonymous = &User{Write: true}

// MaxPasswordLen is the longest password bcrypt takes whole. Longer ones
// are refused: bcrypt would ignore what follows, so that any suffix of a
// 72-byte password would log in too.
const MaxPasswordLen = 72

// Authenticate returns the caller of r: the anonymous user when no users are
// configured, else the user whose Basic credentials r carries. A login that
// failed too often from the same address or for the same name is refused
// with a *RateLimitError.
func (a *Authenticator) Authenticate(r *http.Request) (*User, error) {
	if !a.AddressAllowed(r.RemoteAddr) {
		return nil, ErrAddress
	}
	if len(a.users) == 0 {
		return anonymous, nil
	}
	name, pass, ok := r.BasicAuth()
	if !ok {
		return nil, ErrNoCredentials
	}
	sum := sha256.Sum256([]byte(name + ":" + pass))
	if v, ok := a.verified.Load(sum); ok {
		return &v.(*account).user, nil
	}
	a.mu.Lock()
	if c := a.checking[sum]; c != nil {
		a.mu.Unlock()
		<-c.done
		return c.user, c.err
	}
	if a.checking == nil {
		a.checking = map[[32]byte]*check{}
	}
	c := &check{done: make(chan struct{})}
	a.checking[sum] = c
	a.mu.Unlock()
	c.user, c.err = a.verify(r.RemoteAddr, name, pass, sum)
	a.mu.Lock()
	delete(a.checking, sum)
	a.mu.Unlock()
	close(c.done)
	return c.user, c.err
}

// verify checks credentials that are not in the cache.
func (a *Authenticator) verify(remoteAddr, name, pass string, sum [32]byte) (*User, error) {
	acct := a.users[name]
	var keys []string
	if a.failures != nil {
		// Names that are not users share one bucket, so that made-up
		// names cannot grow the limiter.
		nameKey := "user:?"
		if acct != nil {
			nameKey = "user:" + name
		}
		keys = []string{nameKey}
		if addr, ok := clientAddr(remoteAddr); ok {
			keys = append(keys, addrKey(addr))
		}
		if wait, ok := a.failures.take(keys...); !ok {
			return nil, &RateLimitError{RetryAfter: wait}
		}
	}
	if len(pass) > MaxPasswordLen {
		return nil, ErrBadCredentials
	}
	if acct == nil {
		// Spend the same time as for a real user, so that timing does not
		// tell which names exist.
		bcrypt.CompareHashAndPassword(dummyHash, []byte(pass))
		return nil, ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword(acct.hash, []byte(pass)) != nil {
		return nil, ErrBadCredentials
	}
	if a.failures != nil {
		a.failures.refund(keys...)
	}
	a.verified.Store(sum, acct)
	return &acct.user, nil
}

// dummyHash is a bcrypt hash at the default cost, of a password no account
// has (it is compared only for unknown names). It is written out rather
// than generated at start: generating it cost every process, `attachd
// healthcheck` included, 60 ms of CPU.
var dummyHash = []byte("$2a$10$FeqX6LKm8hBaKp9YN2m5susm790m55.R3t6awqZewiRChZ8aBwyWK")

type ctxKey struct{}

// WithUser returns ctx carrying u.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, ctxKey{}, u)
}

// FromContext returns the user stored by WithUser, or nil.
func FromContext(ctx context.Context) *User {
	u, _ := ctx.Value(ctxKey{}).(*User)
	return u
}

// Challenge writes a 401 with a Basic challenge.
func Challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="attachd", charset="UTF-8"`)
	http.Error(w, "authentication required", http.StatusUnauthorized)
}

// Lookup returns the configured user called name, as it is configured now,
// without checking a password: for a session whose login was checked when
// it began. With no users configured, "" is the anonymous user.
func (a *Authenticator) Lookup(name string) (*User, bool) {
	if len(a.users) == 0 {
		return anonymous, name == ""
	}
	acct, ok := a.users[name]
	if !ok {
		return nil, false
	}
	return &acct.user, true
}
