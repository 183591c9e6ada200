package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRetentionTables(t *testing.T) {
	good := `
[[retention]]
prefix = "/kazoo/"
max_age = "365d"

[[retention]]
prefix = "/kazoo/"
max_age = "12w"
match = { doc_type = "mailbox_message", content_type = "audio/*" }

[[hold]]
prefix = "/kazoo/acct/"
note = "case 1"

[retention_sweep]
rate = 2.5
interval = "30m"
`
	p := filepath.Join(t.TempDir(), "cfg.toml")
	os.WriteFile(p, []byte(good), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Retention) != 2 || time.Duration(c.Retention[1].MaxAge) != 12*7*24*time.Hour ||
		c.Retention[1].Match.DocType != "mailbox_message" || len(c.Hold) != 1 || c.RetentionSweep.Rate != 2.5 {
		t.Fatalf("loaded %+v %+v %+v", c.Retention, c.Hold, c.RetentionSweep)
	}
	if _, err := c.Encode(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		toml string
		want []string
	}{
		{"[[retention]]\nprefix = \"/a\"\nmax_age = \"90d\"\n[[retention]]\nprefix = \"b\"\nmax_age = \"1d\"\n",
			[]string{"cfg.toml:5", "retention.prefix", "[[retention]] 2"}},
		{"[[retention]]\nprefix = \"/a\"\nmax_age = \"ninety\"\n", []string{"cfg.toml:3", "bad age"}},
		{"[[retention]]\nprefix = \"/a\"\n", []string{"cfg.toml", "retention.max_age", "must be set"}},
		{"[[retention]]\nprefix = \"/a\"\nmax_age = \"1d\"\nmatch = { doc_type = \"vm\" }\n", []string{"cfg.toml:4", "retention.match", "doc_type"}},
		{"[[retention]]\nprefix = \"/a\"\nmax_age = \"1d\"\nmatch = { kind = \"vm\" }\n", []string{"unknown key", "retention.match.kind"}},
		{"[[hold]]\nprefix = \"\"\n", []string{"cfg.toml:2", "hold.prefix"}},
		{"[retention_sweep]\ninterval = \"-1h\"\n", []string{"cfg.toml:2", "retention_sweep.interval"}},
	} {
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
