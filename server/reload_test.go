package server

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/retention"
	"github.com/attachd/attachd/server/tlsconf/tlstest"
)

// TestApplyMatchesReloadable keeps apply and the list of reloadable keys in
// step: apply takes every key the list names, and no other.
func TestApplyMatchesReloadable(t *testing.T) {
	cur := config.Default()
	next := config.Default()
	// Every key of the list, and some that need a restart.
	next.Users = []config.User{{Name: "u", PasswordHash: "$2a$x", Root: "/", Permissions: "r", QuotaBytes: 5}}
	next.AllowFrom, next.AllowAnonymous, next.TrustedProxies = []string{"10.0.0.0/8"}, true, []string{"10.0.0.1"}
	next.Metrics.AllowFrom, next.Metrics.User = []string{"10.0.0.2"}, "u"
	next.Log.Level, next.Log.Access = "debug", false
	next.Limits.AuthFailures, next.Limits.MaxUploads = 1, 2
	next.Limits.BodyIdleTimeout, next.Limits.MinBodyRate = config.Duration(time.Second), 3
	next.Hook = map[string]config.HookCfg{"h": {Concurrency: 9}}
	next.Retention = []retention.Rule{{Prefix: "/a", MaxAge: retention.Age(time.Hour)}}
	next.Hold = []retention.Hold{{Prefix: "/a/b"}}
	next.RetentionSweep.Rate = 1
	next.Listen, next.MaxBody, next.Log.Format = "127.0.0.1:1", 1, "json"
	next.Limits.MaxConnections, next.DAV.ByDate = 1, false
	next.TLS.CertFile, next.TLS.KeyFile = "/c", "/k" // TLS turned on: a restart

	got := apply(cur, next)
	for _, k := range config.Changed(got, next) {
		if isReloadable(k) && !strings.HasPrefix(k, "tls.") {
			t.Errorf("reloadable key %s not applied", k)
		}
	}
	for _, k := range config.Changed(cur, got) {
		if !isReloadable(k) {
			t.Errorf("key %s applied, but not in the reloadable list", k)
		}
	}
	if got.TLS.CertFile != "" {
		t.Error("TLS turned on by a reload")
	}
	// Between two TLS configurations, the files are applied.
	cur.TLS = config.TLS{CertFile: "/a", KeyFile: "/b"}
	next.TLS = config.TLS{CertFile: "/c", KeyFile: "/d", ClientCAFile: "/e", WatchInterval: 1}
	got = apply(cur, next)
	if want := (config.TLS{CertFile: "/c", KeyFile: "/d", ClientCAFile: "/e"}); got.TLS != want {
		t.Errorf("TLS after apply = %+v, want %+v", got.TLS, want)
	}
}

// syncBuffer is a log destination read while the server writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestReloadSwapsOrRefusesWhole: a reload replaces the logins and the hook
// settings, names what needs a restart; one that cannot apply (a TLS pair
// gone, all users removed from an exposed listener) changes nothing.
func TestReloadSwapsOrRefusesWhole(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "CA")
	leaf := ca.Server(t)
	cf, kf := leaf.Write(t, dir, "server")
	alice := config.User{Name: "alice", PasswordHash: bcryptHash(t, "a"), Root: "/", Permissions: "rw"}
	bob := config.User{Name: "bob", PasswordHash: bcryptHash(t, "b"), Root: "/", Permissions: "rw"}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "0.0.0.0:37635"
	cfg.Log.Access = false
	cfg.Users = []config.User{alice}
	cfg.TLS = config.TLS{CertFile: cf, KeyFile: kf}
	var logs syncBuffer
	level := new(slog.LevelVar)
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level})))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Store().Close()
	s.LogLevel = level
	status := func(u config.User, pw string) int {
		r := do(s, "GET", "/kazoo/none", "10.1.1.1:1", nil, "Authorization", basic(u.Name, pw))
		r.Body.Close()
		return r.StatusCode
	}
	if status(alice, "a") != 404 || status(bob, "b") != 401 {
		t.Fatalf("before reload: alice %d, bob %d", status(alice, "a"), status(bob, "b"))
	}

	next := cfg
	quotaBob := bob
	quotaBob.QuotaBytes = 1 << 20 // the store's quotas are fixed at start
	next.Users = []config.User{quotaBob}
	next.Hook = map[string]config.HookCfg{"webhook": {Concurrency: 7}}
	next.Log.Level = "debug"
	next.MaxBody = 1 << 20
	next.DAV.ByDate = false
	if err := s.Reload(next); err != nil {
		t.Fatal(err)
	}
	if status(alice, "a") != 401 || status(bob, "b") != 404 {
		t.Errorf("after reload: alice %d, bob %d", status(alice, "a"), status(bob, "b"))
	}
	if c := s.now().cfg.HookSettings("webhook").Concurrency; c != 7 {
		t.Errorf("hook concurrency after reload: %d", c)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("level after reload: %v", level.Level())
	}
	if s.now().cfg.MaxBody != cfg.MaxBody {
		t.Error("max_body, a restart-only key, was applied")
	}
	if !strings.Contains(logs.String(), `keys="max_body dav.by_date users.quota_*"`) {
		t.Errorf("restart-only keys not named:\n%s", logs.String())
	}

	// The key file gone: the whole reload is refused, bob stays.
	os.Remove(kf)
	refused := next
	refused.Users = []config.User{alice}
	if err := s.Reload(refused); err == nil || !strings.Contains(err.Error(), "key_file") {
		t.Errorf("reload with the key gone: %v", err)
	}
	if status(bob, "b") != 404 || status(alice, "a") != 401 {
		t.Error("a refused reload changed the logins")
	}
	if s.tls.Serial() != leaf.Cert.SerialNumber.Text(16) {
		t.Error("a refused reload changed the certificate")
	}

	// No users on 0.0.0.0 without allow_anonymous: refused.
	leaf.Write(t, dir, "server")
	open := next
	open.Users = nil
	if err := s.Reload(open); err == nil || !strings.Contains(err.Error(), "allow_anonymous") {
		t.Errorf("reload leaving 0.0.0.0 open: %v", err)
	}
	if status(bob, "b") != 404 {
		t.Error("a refused reload changed the logins")
	}
	if !reflect.DeepEqual(s.now().cfg.Users, next.Users) {
		t.Error("a refused reload changed the configuration")
	}
}

func basic(name, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(name+":"+pw))
}
