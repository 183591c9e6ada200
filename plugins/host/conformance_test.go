package host_test

import (
	"crypto/rand"
	"os"
	"strings"
	"testing"

	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/store"
	"github.com/attachd/attachd/server/store/storetest"
)

// runPlugin starts the real binary of plugin name with cfg and returns its
// Backend; the plugin is stopped when the test ends.
func runPlugin(t *testing.T, name string, cfg map[string]any, secrets map[string]any) store.Backend {
	t.Helper()
	dir, pin := install(t, buildPlugin(t, name), name, cfg)
	pin.Secrets = secrets
	m, err := host.New(host.Config{Dir: dir, Plugins: map[string]config.Plugin{name: pin}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	b, err := m.Backend(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// needEnv returns the named environment variables, skipping the test when
// one is unset, unless CI=true, where a missing server is a failure.
func needEnv(t *testing.T, names ...string) []string {
	t.Helper()
	var vals []string
	for _, n := range names {
		v := os.Getenv(n)
		if v == "" {
			msg := n + " is not set: start the server with .ci/sshd.sh or .ci/azurite.sh and source its env file"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		vals = append(vals, v)
	}
	return vals
}

func TestConformanceExample(t *testing.T) {
	b := runPlugin(t, "example", nil, nil)
	storetest.Run(t, func(*testing.T) store.Backend { return b })
}

// TestConformanceSFTP runs the suite through attachd-plugin-sftp against
// the OpenSSH sshd started by .ci/sshd.sh.
func TestConformanceSFTP(t *testing.T) {
	env := needEnv(t, "ATTACHD_SFTP_ADDR", "ATTACHD_SFTP_USER", "ATTACHD_SFTP_KEY", "ATTACHD_SFTP_HOST_KEY", "ATTACHD_SFTP_ROOT")
	hostKey, err := os.ReadFile(env[3])
	if err != nil {
		t.Fatal(err)
	}
	b := runPlugin(t, "sftp", map[string]any{
		"address":          env[0],
		"user":             env[1],
		"private_key_file": env[2],
		"host_key":         string(hostKey),
		"root":             env[4],
	}, nil)
	storetest.Run(t, func(*testing.T) store.Backend { return b })
}

// TestConformanceAzblob runs the suite through attachd-plugin-azblob
// against the Azurite started by .ci/azurite.sh, with a fresh container.
func TestConformanceAzblob(t *testing.T) {
	env := needEnv(t, "ATTACHD_AZURITE_URL", "ATTACHD_AZURITE_ACCOUNT", "ATTACHD_AZURITE_KEY")
	b := runPlugin(t, "azblob", map[string]any{
		"account_url":  env[0],
		"account_name": env[1],
		"container":    "conformance-" + strings.ToLower(rand.Text()[:8]),
	}, map[string]any{"account_key": env[2]})
	storetest.Run(t, func(*testing.T) store.Backend { return b })
}
