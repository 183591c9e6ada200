package auth

import (
	"errors"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/attachd/attachd/server/config"
)

func hash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestAuthenticate(t *testing.T) {
	a, err := New([]config.User{
		{Name: "kazoo", PasswordHash: hash(t, "s3cret"), Root: "/", Permissions: "rw"},
		{Name: "acme", PasswordHash: hash(t, "pw"), Root: "/kazoo/acct%2Fx", Permissions: "r"},
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
	a, err := New([]config.User{{Name: "acme", PasswordHash: hash(t, "pw"), Root: "/kazoo/acct%2Fx/", Permissions: "r"}}, nil)
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
	if _, err := New([]config.User{{Name: "x", PasswordHash: "$2a", Root: "/a/../b"}}, nil); err == nil {
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
