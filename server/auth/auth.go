// Package auth checks who is asking: Basic credentials against the configured
// users, client addresses against the allow-list, and what subtree and
// permissions each user has. Kazoo and WebDAV use the same rules.
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/attachd/attachd/server/config"
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
	allow []netip.Prefix
	// verified caches sha256(name:password) of credentials that bcrypt has
	// accepted: Kazoo sends Basic auth with every request, and bcrypt costs
	// tens of milliseconds by design.
	verified sync.Map // [32]byte → *account
}

// New builds an Authenticator from the configuration.
func New(users []config.User, allowFrom []string) (*Authenticator, error) {
	a := &Authenticator{users: map[string]*account{}}
	for _, u := range users {
		root, err := store.CanonicalPath(u.Root)
		if err != nil {
			return nil, fmt.Errorf("user %q: root %q: %w", u.Name, u.Root, err)
		}
		a.users[u.Name] = &account{user: User{Name: u.Name, Root: root, Write: u.Permissions == "rw"},
			hash: []byte(u.PasswordHash)}
	}
	for _, s := range allowFrom {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			addr, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return nil, fmt.Errorf("allow_from: %q is not a CIDR or an address", s)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		a.allow = append(a.allow, p.Masked())
	}
	return a, nil
}

// Enabled reports whether any users are configured.
func (a *Authenticator) Enabled() bool { return len(a.users) > 0 }

// AddressAllowed reports whether the client at remoteAddr (host:port) may connect.
func (a *Authenticator) AddressAllowed(remoteAddr string) bool {
	if len(a.allow) == 0 {
		return true
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range a.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

var anonymous = &User{Write: true}

// Authenticate returns the caller of r: the anonymous user when no users are
// configured, else the user whose Basic credentials r carries.
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
	acct := a.users[name]
	if acct == nil {
		// Spend the same time as for a real user, so that timing does not
		// tell which names exist.
		bcrypt.CompareHashAndPassword(dummyHash, []byte(pass))
		return nil, ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword(acct.hash, []byte(pass)) != nil {
		return nil, ErrBadCredentials
	}
	a.verified.Store(sum, acct)
	return &acct.user, nil
}

// dummyHash is a bcrypt hash of a random password at the default cost.
var dummyHash = func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("attachd-no-such-user"), bcrypt.DefaultCost)
	return h
}()

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
