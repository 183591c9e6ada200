package main

// The benchmark run by bench/plugins.sh: an upload and download through
// attachd-plugin-s3 beside the same transfer done in this process by the
// plugin's own backend type, against the same MinIO. It is skipped unless
// ATTACHD_PLUGINBENCH says which side to run (inproc, plugin,
// plugin-stream, inproc-chunked: see plugins/internal/pluginbench and
// plugins/sftp/bench_test.go). Other variables: those of pluginbench, and
// the ATTACHD_TEST_S3_* variables of .ci/minio.sh. The result is one
// "PLUGINBENCH key=value…" line on stdout.

import (
	"crypto/rand"
	"os"
	"strings"
	"testing"

	"github.com/attachd/attachd/plugins/internal/pluginbench"
	"github.com/attachd/attachd/plugins/sdk"
)

// benchConfig returns the plugin's config and secrets tables, as attachd
// would hand them over, for the MinIO of .ci/minio.sh: a fresh bucket, the
// default part size.
func benchConfig(t *testing.T) (cfg, secrets map[string]any) {
	env := pluginbench.Env(t, "ATTACHD_TEST_S3_ENDPOINT", "ATTACHD_TEST_S3_ACCESS_KEY", "ATTACHD_TEST_S3_SECRET_KEY")
	return map[string]any{
		"endpoint":      env[0],
		"bucket":        "pluginbench-" + strings.ToLower(rand.Text()[:8]),
		"access_key_id": env[1],
		"path_style":    true,
	}, map[string]any{"secret_access_key": env[2]}
}

func TestPluginBench(t *testing.T) {
	if os.Getenv("ATTACHD_PLUGINBENCH") == "" {
		t.Skip("ATTACHD_PLUGINBENCH is not set: run bench/plugins.sh")
	}
	cfg, secrets := benchConfig(t)
	// The backend the plugin binary serves (main.go), configured as the SDK would.
	pluginbench.Run(t, "s3", cfg, secrets, func(c sdk.Config) (sdk.Storage, error) {
		b := &backend{}
		return b, b.Configure(t.Context(), c)
	})
}
