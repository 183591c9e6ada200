package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
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
