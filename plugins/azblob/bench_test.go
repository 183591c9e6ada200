package main

// The benchmark run by bench/plugins.sh: a 1 GiB upload and download through
// attachd-plugin-azblob beside the same transfer done in this process by the
// plugin's own backend type, against the same Azurite. It is skipped unless
// ATTACHD_PLUGINBENCH says which side to run:
//
//	ATTACHD_PLUGINBENCH=inproc   the backend the plugin binary serves, called directly
//	ATTACHD_PLUGINBENCH=plugin   the real binary, started by plugins/host, through Manager.Backend
//	ATTACHD_PLUGINBENCH=inproc-chunked
//	                             in-process, but downloading with plain 256 KiB Reads (no
//	                             WriterTo), as the SDK's Read handler reads the backend: a
//	                             diagnostic that separates the read pattern from the gRPC hop
//
// Other variables: ATTACHD_PLUGINBENCH_SIZE (bytes, default 1 GiB),
// ATTACHD_PLUGINBENCH_DIR and ATTACHD_PLUGINBENCH_SHA256 (plugin side: the
// folder holding attachd-plugin-azblob and its pin), and the
// ATTACHD_AZURITE_* variables of .ci/azurite.sh. Each side runs in a process
// of its own, so the peak RSS of one is not inflated by the other; the
// result is one "PLUGINBENCH key=value…" line on stdout.

import (
	"crypto/rand"
	"os"
	"strings"
	"testing"

	"github.com/attachd/attachd/plugins/internal/pluginbench"
	"github.com/attachd/attachd/plugins/sdk"
)

const benchPlugin = "azblob"

// benchConfig returns the plugin's config and secrets tables, as attachd
// would hand them over, for the Azurite of .ci/azurite.sh: shared key, a
// fresh container, the default block size.
func benchConfig(t *testing.T) (cfg, secrets map[string]any) {
	env := pluginbench.Env(t, "ATTACHD_AZURITE_URL", "ATTACHD_AZURITE_ACCOUNT", "ATTACHD_AZURITE_KEY")
	return map[string]any{
		"account_url":  env[0],
		"account_name": env[1],
		"container":    "pluginbench-" + strings.ToLower(rand.Text()[:8]),
	}, map[string]any{"account_key": env[2]}
}

func TestPluginBench(t *testing.T) {
	if os.Getenv("ATTACHD_PLUGINBENCH") == "" {
		t.Skip("ATTACHD_PLUGINBENCH is not set: run bench/plugins.sh")
	}
	cfg, secrets := benchConfig(t)
	// The backend the plugin binary serves (main.go), configured as the SDK would.
	pluginbench.Run(t, benchPlugin, cfg, secrets, func(c sdk.Config) (sdk.Storage, error) {
		b := &backend{}
		return b, b.Configure(t.Context(), c)
	})
}
