package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attachd/attachd/server/tlsconf/tlstest"
)

func TestTLSKeys(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	cf, kf := ca.Server(t).Write(t, dir, "server")
	_, otherKey := ca.Server(t).Write(t, dir, "other")
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.PEM, 0o600)
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("junk\n"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		toml string
		want string // error prefix after "cfg.toml:" (a key not set has no line); "" for none
	}{
		{"[tls]\ncert_file = %[1]q\nkey_file = %[2]q\n", ""},
		{"[tls]\ncert_file = %[1]q\nkey_file = %[2]q\nclient_ca_file = %[3]q\n", ""},
		{"[tls]\ncert_file = %[1]q\n", " tls.key_file: must be set with tls.cert_file"},
		{"[tls]\n\nkey_file = %[2]q\n", " tls.cert_file: must be set with tls.key_file"},
		{"[tls]\nclient_ca_file = %[3]q\n", "2: tls.client_ca_file: needs tls.cert_file"},
		{"[tls]\ncert_file = %[4]q\nkey_file = %[2]q\n", "2: tls.cert_file: "},
		{"[tls]\ncert_file = %[1]q\nkey_file = %[4]q\n", "3: tls.key_file: "},
		{"[tls]\ncert_file = %[1]q\nkey_file = %[6]q\n", "3: tls.key_file: "},
		{"[tls]\ncert_file = %[5]q\nkey_file = %[2]q\n", "3: tls.key_file: "},
		{"[tls]\ncert_file = %[1]q\nkey_file = %[2]q\nclient_ca_file = %[5]q\n", "4: tls.client_ca_file: "},
		{"[tls]\ncert_file = %[1]q\nkey_file = %[2]q\nclient_ca_file = %[4]q\n", "4: tls.client_ca_file: "},
		{"[tls]\nwatch_interval = \"-1s\"\n", "2: tls.watch_interval: must not be negative"},
	}
	for _, tt := range tests {
		p := filepath.Join(t.TempDir(), "cfg.toml")
		// Every file is given, whether the case uses it or not.
		text := fmt.Sprintf(tt.toml+"%.0[1]s%.0[2]s%.0[3]s%.0[4]s%.0[5]s%.0[6]s", cf, kf, caFile, missing, junk, otherKey)
		os.WriteFile(p, []byte(text), 0o600)
		c, err := Load(p)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", text, err)
			} else if !c.TLS.Enabled() || c.TLS.Files().CertFile != cf {
				t.Errorf("%s: TLS = %+v", text, c.TLS)
			}
			continue
		}
		if want := p + ":" + tt.want; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant prefix %q", text, err, want)
		}
	}
	if d := Default(); d.TLS.Enabled() || time.Duration(d.TLS.WatchInterval) != 5*time.Second {
		t.Errorf("default [tls] = %+v, want off, checked every 5 s", d.TLS)
	}
}

func TestChanged(t *testing.T) {
	a := Default()
	a.Users = []User{{Name: "kazoo", PasswordHash: "$2a$…", Root: "/", Permissions: "rw"}}
	a.Plugin = map[string]Plugin{"s3": {SHA256: "x", Secrets: map[string]any{"key": "hunter2"}}}
	a.Hook = map[string]HookCfg{"webhook": {Concurrency: 2}}
	if got := Changed(a, a); len(got) != 0 {
		t.Errorf("Changed(a, a) = %q", got)
	}
	b := a
	b.Listen = "127.0.0.1:1"
	b.Log.Level = "debug"
	b.Limits.MaxUploads = 3
	b.Users = append([]User{}, a.Users...)
	b.Users[0].Permissions = "r"
	b.Plugin = map[string]Plugin{"s3": {SHA256: "x", Secrets: map[string]any{"key": "hunter3"}}, "sftp": {}}
	b.Hook = map[string]HookCfg{"webhook": {Concurrency: 4}}
	b.AllowFrom = nil // empty either way
	want := []string{"listen", "log.level", "limits.max_uploads", "users", "plugin.s3.secrets", "plugin.sftp", "hook.webhook.concurrency"}
	got := Changed(a, b)
	if !slices.Equal(got, want) {
		t.Errorf("Changed = %q\n   want %q", got, want)
	}
	for _, k := range got {
		if strings.Contains(k, "hunter") {
			t.Errorf("a secret in a key name: %q", k)
		}
	}
}
