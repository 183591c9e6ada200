package host_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"golang.org/x/crypto/ssh"

	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/plugins/internal/plugintest"
	"github.com/attachd/attachd/server/store/storetest"
)

// runPlugin starts the real binary of plugin name with cfg and returns its
// Backend; the plugin is stopped when the test ends.
func runPlugin(t *testing.T, name string, cfg map[string]any, secrets map[string]any) blob.Backend {
	t.Helper()
	dir, pin := install(t, buildPlugin(t, name), name, cfg)
	pin.Secrets = secrets
	m, err := host.New(host.Config{Dir: dir, Plugins: map[string]host.Plugin{name: pin}, Logger: plugintest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	pid := m.Status()[0].PID
	t.Cleanup(func() { t.Logf("plugin %s peak RSS: %s", name, peakRSS(pid)) })
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
	storetest.Run(t, func(*testing.T) blob.Backend { return b })
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
	storetest.Run(t, func(*testing.T) blob.Backend { return b })
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
	storetest.Run(t, func(*testing.T) blob.Backend { return b })
}

// peakRSS reads a process's peak resident set size from /proc.
func peakRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// TestCancelAborts cancels an upload's context mid-stream: the blob must not
// appear, and Commit must fail.
func TestCancelAborts(t *testing.T) {
	b := runPlugin(t, "example", nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := b.Create(ctx, "cancelled", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 3*storetest.ChunkSize)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Commit(context.Background()); err == nil {
		t.Fatal("Commit after the upload's context was cancelled succeeded")
	}
	if _, err := b.Stat(context.Background(), "cancelled"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat after cancel: %v", err)
	}
}

// TestAzblobAuthModes writes through one plugin process with a shared key
// and reads the blob back through others using a connection string and a
// container SAS URL: two attachd nodes sharing a container see each
// other's blobs.
func TestAzblobAuthModes(t *testing.T) {
	env := needEnv(t, "ATTACHD_AZURITE_URL", "ATTACHD_AZURITE_ACCOUNT", "ATTACHD_AZURITE_KEY")
	ctr := "modes-" + strings.ToLower(rand.Text()[:8])
	shared := runPlugin(t, "azblob", map[string]any{"account_url": env[0], "account_name": env[1], "container": ctr},
		map[string]any{"account_key": env[2]})
	put := func(b blob.Backend, name, data string) {
		t.Helper()
		w, err := b.Create(context.Background(), name, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
		if err := w.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	read := func(b blob.Backend, name string) string {
		t.Helper()
		r, err := b.Open(context.Background(), name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		data, _ := io.ReadAll(r)
		return string(data)
	}
	put(shared, "a/blob", "shared key")

	u, _ := url.Parse(env[0])
	cs := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", env[1], env[2], u)
	byCS := runPlugin(t, "azblob", map[string]any{"container": ctr}, map[string]any{"connection_string": cs})
	if got := read(byCS, "a/blob"); got != "shared key" {
		t.Errorf("connection string read %q", got)
	}
	put(byCS, "b/blob", "connection string")

	cred, err := azblob.NewSharedKeyCredential(env[1], env[2])
	if err != nil {
		t.Fatal(err)
	}
	perms := sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		ExpiryTime:    time.Now().Add(time.Hour),
		Permissions:   perms.String(),
		ContainerName: ctr,
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	bySAS := runPlugin(t, "azblob", nil, map[string]any{"sas_url": env[0] + "/" + ctr + "?" + qp.Encode()})
	if got := read(bySAS, "b/blob"); got != "connection string" {
		t.Errorf("SAS read %q", got)
	}
	put(bySAS, "c/blob", "sas")
	blobs, _, err := shared.List(context.Background(), "", "", 0)
	if err != nil || len(blobs) != 3 {
		t.Errorf("List through the shared key: %v, %v", blobs, err)
	}
}

// TestSFTPWrongHostKey pins a key the server does not have: calls fail,
// saying so, and nothing is sent.
func TestSFTPWrongHostKey(t *testing.T) {
	env := needEnv(t, "ATTACHD_SFTP_ADDR", "ATTACHD_SFTP_USER", "ATTACHD_SFTP_KEY")
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	b := runPlugin(t, "sftp", map[string]any{
		"address": env[0], "user": env[1], "private_key_file": env[2],
		"host_key": string(ssh.MarshalAuthorizedKey(sshPub)),
	}, nil)
	_, err = b.Stat(context.Background(), "x")
	if !errors.Is(err, host.ErrUnavailable) || !strings.Contains(err.Error(), "host key mismatch") {
		t.Fatalf("Stat with a wrong host key: %v", err)
	}
	t.Logf("error: %v", err)
}

// TestSFTPListSweepsStaleTemporaryFiles: a write whose plugin died leaves
// its temporary file; List removes it once it is a day old, and only then.
func TestSFTPListSweepsStaleTemporaryFiles(t *testing.T) {
	env := needEnv(t, "ATTACHD_SFTP_ADDR", "ATTACHD_SFTP_USER", "ATTACHD_SFTP_KEY", "ATTACHD_SFTP_HOST_KEY", "ATTACHD_SFTP_ROOT")
	hostKey, err := os.ReadFile(env[3])
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(env[4], fmt.Sprintf("sweep-%d", time.Now().UnixNano()))
	b := runPlugin(t, "sftp", map[string]any{
		"address": env[0], "user": env[1], "private_key_file": env[2],
		"host_key": string(hostKey), "root": root,
	}, nil)
	if err := os.MkdirAll(filepath.Join(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, "a", ".attachd-tmp-stale")
	fresh := filepath.Join(root, "a", ".attachd-tmp-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("cut"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	got, _, err := b.List(context.Background(), "", "", 100)
	if err != nil || len(got) != 0 {
		t.Fatalf("List = %v, %v; want no blobs", got, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the day-old temporary file is still there after List: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a fresh temporary file (a write in progress) was removed: %v", err)
	}
}
