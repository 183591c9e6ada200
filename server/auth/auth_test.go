package auth

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func hash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestAuthenticate(t *testing.T) {
	a, err := New([]Account{
		{Name: "kazoo", PasswordHash: hash(t, "s3cret"), Root: "/", Write: true},
		{Name: "acme", PasswordHash: hash(t, "pw"), Root: "/kazoo/acct%2Fx"},
	}, []string{"10.0.0.0/24", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		remote, user, pass string
		want               error
		name               string
	}{
		{"127.0.0.1:5000", "kazoo", "s3cret", nil, "kazoo"},
		{"127.0.0.1:5000", "kazoo", "s3cret", nil, "kazoo"}, // from the cache
		{"10.0.0.9:1", "acme", "pw", nil, "acme"},
		{"127.0.0.1:5000", "kazoo", "wrong", ErrBadCredentials, ""},
		{"127.0.0.1:5000", "nobody", "s3cret", ErrBadCredentials, ""},
		{"127.0.0.1:5000", "", "", ErrNoCredentials, ""},
		{"10.0.1.1:1", "kazoo", "s3cret", ErrAddress, ""},
		{"[::ffff:10.0.0.7]:1", "kazoo", "s3cret", nil, "kazoo"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/x", nil)
		r.RemoteAddr = tt.remote
		if tt.user != "" {
			r.SetBasicAuth(tt.user, tt.pass)
		}
		u, err := a.Authenticate(r)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s %s:%s: err %v, want %v", tt.remote, tt.user, tt.pass, err, tt.want)
			continue
		}
		if err == nil && u.Name != tt.name {
			t.Errorf("%s: user %q, want %q", tt.user, u.Name, tt.name)
		}
	}
}

func TestScopes(t *testing.T) {
	a, err := New([]Account{{Name: "acme", PasswordHash: hash(t, "pw"), Root: "/kazoo/acct%2Fx/"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := &a.users["acme"].user
	if u.Root != "kazoo/acct%2Fx" || u.Write {
		t.Fatalf("user = %+v", u)
	}
	if got := u.Key("a/b"); got != "kazoo/acct%2Fx/a/b" {
		t.Errorf("Key = %q", got)
	}
	for key, want := range map[string]bool{
		"kazoo/acct%2Fx": true, "kazoo/acct%2Fx/a": true, "kazoo/acct%2Fxy": false, "kazoo": false, "other/x": false,
	} {
		if _, ok := u.Inside(key); ok != want {
			t.Errorf("Inside(%q) = %v, want %v", key, ok, want)
		}
	}
	if _, err := New([]Account{{Name: "x", PasswordHash: "$2a", Root: "/a/../b"}}, nil); err == nil {
		t.Error("a root with .. was accepted")
	}
}

func TestNoUsersIsAnonymousReadWrite(t *testing.T) {
	a, _ := New(nil, nil)
	u, err := a.Authenticate(httptest.NewRequest("PUT", "/x", nil))
	if err != nil || !u.Write || u.Root != "" {
		t.Fatalf("anonymous = %+v, %v", u, err)
	}
}

func login(a *Authenticator, remote, user, pass string) (*User, error) {
	r := httptest.NewRequest("GET", "/x", nil)
	r.RemoteAddr = remote
	r.SetBasicAuth(user, pass)
	return a.Authenticate(r)
}

// TestFailedLoginsAreRateLimited checks that failures are limited per client
// address and per user name before bcrypt runs, and that credentials already
// verified stay usable.
func TestFailedLoginsAreRateLimited(t *testing.T) {
	a, err := New([]Account{
		{Name: "kazoo", PasswordHash: hash(t, "s3cret"), Root: "/", Write: true},
		{Name: "acme", PasswordHash: hash(t, "pw"), Root: "/"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.LimitFailures(3)
	if _, err := login(a, "10.0.0.1:1", "kazoo", "s3cret"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := login(a, "10.0.0.1:1", "kazoo", "wrong"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	_, err = login(a, "10.0.0.1:1", "kazoo", "wrong")
	var rl *RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) || rl.RetryAfter <= 0 || rl.RetryAfter > 20*time.Second {
		t.Fatalf("4th failure: %v, want a RateLimitError of about 20 s", err)
	}
	// The right password, uncached, is refused as well: it would cost a bcrypt.
	if _, err := login(a, "10.0.0.1:1", "acme", "pw"); !errors.Is(err, ErrRateLimited) {
		t.Errorf("another user from the limited address: %v", err)
	}
	// Per name: another address guessing the same name is refused too.
	if _, err := login(a, "10.0.0.2:1", "kazoo", "guess"); !errors.Is(err, ErrRateLimited) {
		t.Errorf("the limited name from another address: %v", err)
	}
	// Verified credentials never wait.
	if u, err := login(a, "10.0.0.1:1", "kazoo", "s3cret"); err != nil || u.Name != "kazoo" {
		t.Errorf("cached credentials: %v, %v", u, err)
	}
	// Successful logins cost nothing: a fresh address and name stay unlimited.
	for range 5 {
		if _, err := login(a, "10.0.0.3:1", "acme", "pw"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFailureLimiterRefillsAndStaysBounded(t *testing.T) {
	l := newFailureLimiter(2)
	now := time.Unix(1e9, 0)
	l.now = func() time.Time { return now }
	l.max = 100
	for i := range 10000 {
		l.take(fmt.Sprintf("addr:%d", i))
		if n := l.len(); n > l.max {
			t.Fatalf("%d buckets after %d keys, max %d", n, i+1, l.max)
		}
	}
	l.take("k")
	l.take("k")
	if wait, ok := l.take("k"); ok || wait != 30*time.Second {
		t.Fatalf("empty bucket: wait %v, ok %v; want 30s, false", wait, ok)
	}
	now = now.Add(30 * time.Second)
	if _, ok := l.take("k"); !ok {
		t.Fatal("no token after 30 s at 2 a minute")
	}
	// Idle (full) buckets are the first to go.
	now = now.Add(time.Hour)
	l.max = 1
	l.take("fresh")
	if n := l.len(); n != 1 {
		t.Errorf("%d buckets kept, want 1", n)
	}
}

// TestPasswordsPast72BytesAreRefused: bcrypt ignores bytes past 72, so a
// 72-byte password followed by anything would otherwise log in.
func TestPasswordsPast72BytesAreRefused(t *testing.T) {
	pw := strings.Repeat("p", 72)
	a, err := New([]Account{{Name: "kazoo", PasswordHash: hash(t, pw), Root: "/", Write: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := login(a, "10.0.0.1:1", "kazoo", pw); err != nil {
		t.Fatalf("72-byte password: %v", err)
	}
	if _, err := login(a, "10.0.0.1:1", "kazoo", pw+"anything"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("72-byte password plus a suffix: %v, want ErrBadCredentials", err)
	}
}

// TestConcurrentLoginsShareOneCheck: Kazoo's burst of requests after a
// restart, all with the same uncached credentials, costs one bcrypt and is
// never rate limited.
func TestConcurrentLoginsShareOneCheck(t *testing.T) {
	a, err := New([]Account{{Name: "kazoo", PasswordHash: hash(t, "s3cret"), Root: "/", Write: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.LimitFailures(1)
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			_, err := login(a, "10.0.0.1:1", "kazoo", "s3cret")
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestKeepFailures: an Authenticator built by a reload counts on from the
// one it replaces when the limit is the same, and starts afresh when not.
func TestKeepFailures(t *testing.T) {
	accounts := []Account{{Name: "kazoo", PasswordHash: hash(t, "s3cret"), Root: "/", Write: true}}
	build := func(limit int) *Authenticator {
		a, err := New(accounts, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.LimitFailures(limit)
		return a
	}
	old := build(2)
	for range 2 {
		login(old, "10.0.0.1:1", "kazoo", "wrong")
	}
	same := build(2)
	same.KeepFailures(old)
	if _, err := login(same, "10.0.0.1:1", "kazoo", "wrong"); !errors.Is(err, ErrRateLimited) {
		t.Errorf("after a reload with the same limit: %v, want the limit still reached", err)
	}
	other := build(5)
	other.KeepFailures(old)
	if _, err := login(other, "10.0.0.1:1", "kazoo", "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("after a reload with another limit: %v, want a fresh count", err)
	}
}

// TestDummyHashCostsWhatAUserDoes: an unknown name is compared against
// dummyHash so that timing does not tell which names exist; that holds only
// if it is a valid hash at the cost `attachd hash-password` uses.
func TestDummyHashCostsWhatAUserDoes(t *testing.T) {
	cost, err := bcrypt.Cost(dummyHash)
	if err != nil {
		t.Fatalf("dummyHash is not a bcrypt hash: %v", err)
	}
	if cost != bcrypt.DefaultCost {
		t.Fatalf("dummyHash has cost %d, want bcrypt.DefaultCost (%d)", cost, bcrypt.DefaultCost)
	}
	if err := bcrypt.CompareHashAndPassword(dummyHash, []byte("attachd-no-such-user")); err != nil {
		t.Fatalf("dummyHash does not verify: %v", err)
	}
}
