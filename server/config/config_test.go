package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/store"
)

func TestExampleLoadsAsDefaults(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	d.Validate()
	got, _ := c.Encode()
	want, _ := d.Encode()
	if string(got) != string(want) {
		t.Errorf("config.example.toml differs from the defaults:\n got %+v\nwant %+v", c, d)
	}
}

// TestExampleDocumentsEveryKey keeps config.example.toml complete: every key
// of every table must be shown there, set or commented out.
func TestExampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" {
				continue
			}
			re := regexp.MustCompile(`(?m)^[#\s]*(` + regexp.QuoteMeta(tag) + `\s*=|\[\[?[a-z.]*` + regexp.QuoteMeta(tag) + `[a-z.]*\]\]?)`)
			if !re.MatchString(text) {
				t.Errorf("config.example.toml does not document %q", tag)
			}
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft.PkgPath() == typ.PkgPath() {
				walk(ft)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
}

func TestErrorsNameFileLineAndKey(t *testing.T) {
	tests := []struct {
		toml string
		want []string
	}{
		{"listen = \"x:1\"\n\n[kazoo]\nbase46 = \"auto\"\n", []string{"cfg.toml:4", `unknown key "kazoo.base46"`}},
		{"[kazoo]\nbase64 = \"sometimes\"\n", []string{"cfg.toml:2", "kazoo.base64"}},
		{"max_body = \"lots\"\n", []string{"cfg.toml:1", "bad size"}},
		{"listen = 5\n", []string{"cfg.toml:1"}},
		{"[[users]]\nname = \"k\"\npassword_hash = \"plain\"\n", []string{"cfg.toml:3", "bcrypt"}},
		{"[storage]\nbackend = \"azblob\"\n", []string{"cfg.toml:2", "storage.backend"}},
		{"[storage]\nread_cache = -1\n", []string{"cfg.toml:2", "storage.read_cache", "0 (no copies) or more"}},
		{"[storage]\nread_cache = \"100KiB\"\n", []string{"cfg.toml:2", "storage.read_cache", "at least 524288 bytes"}},
		{"listen = \n", []string{"cfg.toml:1"}},
	}
	for _, tt := range tests {
		p := filepath.Join(t.TempDir(), "cfg.toml")
		os.WriteFile(p, []byte(tt.toml), 0o600)
		_, err := Load(p)
		if err == nil {
			t.Errorf("%q: no error", tt.toml)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not contain %q", tt.toml, err, w)
			}
		}
	}
}

func TestPluginTablesAreThePluginsToValidate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cfg.toml")
	os.WriteFile(p, []byte("hooks = [\"webhook\"]\n[plugins]\ndir = \"/x\"\n[plugin.webhook]\nsha256 = \""+strings.Repeat("ab", 32)+"\"\n[plugin.webhook.config]\nurl = \"http://127.0.0.1/\"\nanything = 1\n"), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Plugin["webhook"].Config["anything"] != int64(1) {
		t.Errorf("plugin config = %v", c.Plugin["webhook"].Config)
	}
}

// TestEveryKeyNamesItselfAndItsLine: each validated key is reported with
// its own name and the line it is set on.
func TestEveryKeyNamesItselfAndItsLine(t *testing.T) {
	hash := "$2a$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz12345"
	sha := strings.Repeat("ab", 32)
	tests := []struct {
		toml string
		want string // error prefix after "cfg.toml:"
	}{
		{"listen = \"x:1\"\nidle_timeout = \"-1s\"\n", "2: idle_timeout: "},
		{"read_header_timeout = \"-2s\"\n", "1: read_header_timeout: "},
		{"\nshutdown_grace = \"-1s\"\n", "2: shutdown_grace: "},
		{"shutdown_grace = \"30 seconds\"\n", "1: shutdown_grace: bad duration"},
		{"[limits]\nbody_idle_timeout = \"soon\"\n", "2: limits.body_idle_timeout: bad duration"},
		{"[limits]\nmax_connections = 10\nmax_uploads = -1\n", "3: limits.max_uploads: must not be negative"},
		{"[limits]\nmin_body_rate = -5\n", "2: limits.min_body_rate: "},
		{"[limits]\nauth_failures = -1\n", "2: limits.auth_failures: "},
		{"[limits]\nbody_idle_timeout = \"-1s\"\n", "2: limits.body_idle_timeout: "},
		{"[limits]\nmax_xml_depth = -1\n", "2: limits.max_xml_depth: "},
		{"[metrics]\nallow_from = [\"nope\"]\n", "2: metrics.allow_from: "},
		{"listen = \"x:1\"\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.example\"]\n", "2: trusted_proxies: entry 2: \"proxy.example\" is not a CIDR or an address"},
		{"trusted_proxies = [\"10.0.0.0/33\"]\n", "1: trusted_proxies: entry 1: "},
		{"[metrics]\nuser = \"prom\"\n", "2: metrics.user: "},
		{"[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\n\n[[users]]\nname = \"b\"\npassword_hash = \"" + hash + "\"\nroot = \"kazoo/x\"\n", "8: users.root: "},
		{"[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\nroot = \"/kazoo/../x\"\n", "4: users.root: "},
		{"[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\nroot = \"/kazoo//x\"\n", "4: users.root: "},
		{"[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\nroot = \"/kazoo/%2e%2E\"\n", "4: users.root: "},
		{"[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\npermissions = \"w\"\n", "4: users.permissions: "},
		{"[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\n[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\n", "5: users.name: "},
		{"hooks = [\"webhook\"]\n[plugins]\ndir = \"/x\"\n[plugin.webhook]\nsha256 = \"" + sha + "\"\n[hook.webhok]\nconcurrency = 1\n", "6: hook.webhok: "},
		{"hooks = [\"webhook\"]\n[plugins]\ndir = \"/x\"\n[plugin.webhook]\nsha256 = \"" + sha + "\"\n[hook.webhook]\nconcurrency = 1\nmax_attempts = -1\n", "8: hook.webhook.max_attempts: "},
		{"hooks = [\"webhook\"]\n[plugins]\ndir = \"/x\"\n[plugin.webhook]\nsha256 = \"" + sha + "\"\n[hook.webhook]\ntimeout = \"-1m\"\n", "7: hook.webhook.timeout: "},
		{"[plugin.webhook]\nsha256 = \"short\"\n", "2: plugin.webhook.sha256: "},
		{"[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\nquota_bytes = \"lots\"\n", "4: users.quota_bytes: bad size"},
		{"[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\nquota_bytes = -1\n", "4: users.quota_bytes: "},
		{"[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\nquota_objects = -1\n", "4: users.quota_objects: "},
		{"[[quota]]\nprefix = \"/a\"\nbytes = 1\n[[quota]]\nprefix = \"kazoo\"\nbytes = 1\n", "5: quota.prefix: "},
		{"[[quota]]\nprefix = \"/a/../b\"\nbytes = 1\n", "2: quota.prefix: "},
		{"[[quota]]\nprefix = \"/a\"\n\nbytes = -5\n", "4: quota.bytes: "},
		{"[[quota]]\nprefix = \"/a\"\nobjects = -1\n", "3: quota.objects: "},
		{"[[quota]]\nprefix = \"/a\"\n", "2: quota.prefix: "},
		{"[[users]]\nname = \"a\"\npassword_hash = \"" + hash + "\"\nroot = \"/k/a\"\nquota_bytes = \"1GiB\"\n[[quota]]\nprefix = \"/k/a/\"\nobjects = 5\n", "7: quota.prefix: "},
		{"[plugin.Bad]\nsha256 = \"" + sha + "\"\n", "1: plugin.Bad: "},
		{"[ui]\nsession_idle = \"0s\"\n", "2: ui.session_idle: must be positive"},
		{"[ui]\nsession_idle = \"1h\"\nsession_max = \"30m\"\n", "3: ui.session_max: must be at least"},
		{"[ui]\npage_size = 501\n", "2: ui.page_size: want 1 to 500"},
		{"[ui]\npage_size = 0\n", "2: ui.page_size: want 1 to 500"},
		{"[ui]\nsession_idle = \"soon\"\n", "2: ui.session_idle: bad duration"},
		{"[index]\nurl = \"mysql://u:hunter2@db/x\"\n", "2: index.url: want a PostgreSQL URL"},
		{"[index]\nurl = \"postgres://u:hunter2@db/x\"\n", "2: index.url: a shared index needs a storage backend"},
		{"[storage]\nbackend = \"azblob\"\n[plugins]\ndir = \"/x\"\n[plugin.azblob]\nsha256 = \"" + sha + "\"\n[index]\nurl = \"postgres://db/x\"\n", "8: index.url: in spool mode"},
		{"[index]\nblob_grace = \"30s\"\n", "2: index.blob_grace: want 1m or more"},
	}
	for _, tt := range tests {
		p := filepath.Join(t.TempDir(), "cfg.toml")
		os.WriteFile(p, []byte(tt.toml), 0o600)
		_, err := Load(p)
		if err == nil {
			t.Errorf("%q: no error", tt.toml)
			continue
		}
		if want := p + ":" + tt.want; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q:\n got %q\nwant prefix %q", tt.toml, err, want)
		}
	}
	// Good roots pass.
	for _, root := range []string{"/", "/kazoo", "/kazoo/acct%2Fx/", "/a.b/..c"} {
		p := filepath.Join(t.TempDir(), "cfg.toml")
		os.WriteFile(p, []byte("[[users]]\nname = \"a\"\npassword_hash = \""+hash+"\"\nroot = \""+root+"\"\n"), 0o600)
		if _, err := Load(p); err != nil {
			t.Errorf("root %q: %v", root, err)
		}
	}
}

// TestIndexURLPasswordNeverShown: check-config and errors show the index
// URL without its password.
func TestIndexURLPasswordNeverShown(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	p := filepath.Join(t.TempDir(), "cfg.toml")
	os.WriteFile(p, []byte("[storage]\nbackend = \"azblob\"\nwrite_mode = \"through\"\n[plugins]\ndir = \"/x\"\n[plugin.azblob]\nsha256 = \""+sha+"\"\n"+
		"[index]\nurl = \"postgres://attachd:hunter2@db.example:5432/attachd\"\n"), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Redacted().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "hunter2") || !strings.Contains(string(b), "db.example:5432") {
		t.Errorf("redacted configuration:\n%s", b)
	}
	os.WriteFile(p, []byte("[index]\nurl = \"mysql://attachd:hunter2@db.example/x\"\n"), 0o600)
	if _, err := Load(p); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password, or no error: %v", err)
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cfg.toml")
	os.WriteFile(p, []byte("[plugin.azblob]\nsha256 = \""+strings.Repeat("ab", 32)+"\"\n[plugin.azblob.config]\ncontainer = \"c\"\n[plugin.azblob.secrets]\nconnection_string = \"AccountKey=hunter2\"\n"), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Redacted().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "hunter2") || !strings.Contains(string(b), "REDACTED") || !strings.Contains(string(b), "container") {
		t.Errorf("redacted configuration:\n%s", b)
	}
	if c.Plugin["azblob"].Secrets["connection_string"] != "AccountKey=hunter2" {
		t.Error("Redacted changed the configuration it was called on")
	}
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("plugin", "pin", c.Plugin["azblob"])
	if strings.Contains(log.String(), "hunter2") {
		t.Errorf("log line shows the secret: %s", log.String())
	}
}

func TestQuotas(t *testing.T) {
	hash := "$2a$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz12345"
	p := filepath.Join(t.TempDir(), "cfg.toml")
	os.WriteFile(p, []byte("[[users]]\nname = \"a\"\npassword_hash = \""+hash+"\"\nroot = \"/kazoo/acct%2Fx\"\nquota_bytes = \"50GiB\"\nquota_objects = 100000\n"+
		"[[users]]\nname = \"b\"\npassword_hash = \""+hash+"\"\n"+
		"[[quota]]\nprefix = \"/voicemail/\"\nbytes = \"10MB\"\n[[quota]]\nprefix = \"/\"\nobjects = 7\n"), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got := c.StoreQuotas()
	want := []store.Quota{
		{Name: "/kazoo/acct%2Fx", Prefix: "kazoo/acct%2Fx", Bytes: 50 << 30, Objects: 100000},
		{Name: "/voicemail/", Prefix: "voicemail", Bytes: 10_000_000},
		{Name: "/", Prefix: "", Objects: 7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("quotas:\n got %+v\nwant %+v", got, want)
	}
}
