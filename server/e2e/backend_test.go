package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// backendTOML returns the [storage] and [plugin.NAME] tables that put
// attachd's bytes in a real SFTP server, Azurite or MinIO, started on
// loopback by test.sh (.ci/sshd.sh, .ci/azurite.sh, .ci/minio.sh). Without
// them the test is skipped, except in CI, where it fails. container names
// the folder, container or bucket, fresh per test.
func backendTOML(t testing.TB, kind, mode, container string) string {
	t.Helper()
	need := map[string][]string{
		"sftp":   {"ATTACHD_SFTP_ADDR", "ATTACHD_SFTP_USER", "ATTACHD_SFTP_KEY", "ATTACHD_SFTP_HOST_KEY", "ATTACHD_SFTP_ROOT"},
		"azblob": {"ATTACHD_AZURITE_URL", "ATTACHD_AZURITE_ACCOUNT", "ATTACHD_AZURITE_KEY"},
		"s3":     {"ATTACHD_TEST_S3_ENDPOINT", "ATTACHD_TEST_S3_ACCESS_KEY", "ATTACHD_TEST_S3_SECRET_KEY"},
	}[kind]
	for _, v := range need {
		if os.Getenv(v) == "" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not set: test.sh starts the %s server", v, kind)
			}
			t.Skipf("%s is not set (run ./test.sh, which starts the %s server)", v, kind)
		}
	}
	dir, pins := plugins(t)
	var cfg string
	switch kind {
	case "sftp":
		hostKey, err := os.ReadFile(os.Getenv("ATTACHD_SFTP_HOST_KEY"))
		if err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(os.Getenv("ATTACHD_SFTP_ROOT"), container)
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg = fmt.Sprintf("address = %q\nuser = %q\nprivate_key_file = %q\nhost_key = %q\nroot = %q\n",
			os.Getenv("ATTACHD_SFTP_ADDR"), os.Getenv("ATTACHD_SFTP_USER"), os.Getenv("ATTACHD_SFTP_KEY"),
			strings.TrimSpace(string(hostKey)), root)
	case "azblob":
		cfg = fmt.Sprintf("connection_string = %q\ncontainer = %q\n", azuriteConnString(os.Getenv("ATTACHD_AZURITE_URL")), container)
	case "s3":
		// A fresh bucket per test, made by the plugin on first use.
		cfg = fmt.Sprintf("endpoint = %q\nbucket = %q\npath_style = true\naccess_key_id = %q\n[plugin.s3.secrets]\nsecret_access_key = %q\n",
			os.Getenv("ATTACHD_TEST_S3_ENDPOINT"), container, os.Getenv("ATTACHD_TEST_S3_ACCESS_KEY"), os.Getenv("ATTACHD_TEST_S3_SECRET_KEY"))
	default:
		t.Fatalf("unknown backend %q (sftp, azblob, s3)", kind)
	}
	return fmt.Sprintf("[plugins]\ndir = %q\n[storage]\nbackend = %q\nwrite_mode = %q\n[plugin.%s]\nsha256 = %q\n[plugin.%s.config]\n%s",
		dir, kind, mode, kind, pins[kind], kind, cfg)
}

func azuriteConnString(url string) string {
	return "DefaultEndpointsProtocol=http;AccountName=" + os.Getenv("ATTACHD_AZURITE_ACCOUNT") +
		";AccountKey=" + os.Getenv("ATTACHD_AZURITE_KEY") + ";BlobEndpoint=" + url + ";"
}

func uniqueName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%x", prefix, b)
}

func localBlobs(t *testing.T, dataDir string) int {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dataDir, "blobs", "*", "*"))
	return len(m)
}

type blobObj struct {
	path string
	body []byte
}

func someObjects(n int) []blobObj {
	var out []blobObj
	for i := range n {
		size := []int{0, 1, 1000, 262143, 262145, 3 << 20}[i%6]
		b := make([]byte, size)
		rand.Read(b)
		out = append(out, blobObj{fmt.Sprintf("/p/acct/%03d/vm-%d.mp3", i, size), b})
	}
	return out
}

func (s *server) mustPut(t *testing.T, o blobObj) {
	t.Helper()
	code, err := put(t, s, o.path, o.body)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("PUT %s: %d %v", o.path, code, err)
	}
}

func (s *server) mustGet(t *testing.T, o blobObj) {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr + o.path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, o.body) {
		t.Fatalf("GET %s: %d, %d bytes, want 200 and %d exact bytes", o.path, resp.StatusCode, len(b), len(o.body))
	}
}

// TestRemoteBackends stores through each storage plugin in both write modes,
// reads back before and after the spool is emptied, deletes, and rebuilds an
// empty data directory from the backend alone.
func TestRemoteBackends(t *testing.T) {
	for _, kind := range []string{"sftp", "azblob", "s3"} {
		for _, mode := range []string{"spool", "through"} {
			t.Run(kind+"/"+mode, func(t *testing.T) {
				t.Parallel()
				cfg := &config{Extra: backendTOML(t, kind, mode, uniqueName("rt"))}
				srv := startServer(t, serverOptions{Config: cfg})
				objs := someObjects(12)
				for _, o := range objs {
					srv.mustPut(t, o)
					srv.mustGet(t, o)
				}
				// Every object moves on from the spool (at once when writing through).
				waitFor(t, 60*time.Second, "an empty spool", func() bool { return localBlobs(t, srv.DataDir) == 0 })
				for _, o := range objs {
					srv.mustGet(t, o) // now from the backend
				}
				gone := objs[len(objs)-1]
				req, _ := http.NewRequest(http.MethodDelete, "http://"+srv.Addr+"/dav"+gone.path, nil)
				if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
					t.Fatalf("DELETE: %v %v", resp, err)
				}
				objs = objs[:len(objs)-1]
				time.Sleep(2 * time.Second) // let the deletion reach the backend
				srv.stop(t)

				// The backend alone is enough: wipe the data directory and reindex.
				if err := os.RemoveAll(srv.DataDir); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(attachdBinary(t), "reindex", "--config", srv.cfgPath, "--data-dir", srv.DataDir).CombinedOutput()
				if err != nil || !strings.Contains(string(out), fmt.Sprintf("reindexed %d objects", len(objs))) {
					t.Fatalf("reindex from the backend: %v\n%s", err, out)
				}
				srv.restart(t)
				for _, o := range objs {
					srv.mustGet(t, o)
				}
				if resp, err := http.Get("http://" + srv.Addr + gone.path); err != nil || resp.StatusCode != http.StatusNotFound {
					t.Fatalf("deleted object after reindex: %v %v", resp, err)
				}
			})
		}
	}
}

// TestBackendOutage: with the backend unreachable, spool mode keeps
// accepting uploads and serves them from the spool; once the backend is
// back, every accepted upload reaches it. Write-through fails fast with 503
// and stores nothing.
func TestBackendOutage(t *testing.T) {
	container := uniqueName("outage")
	good := backendTOML(t, "azblob", "spool", container)
	dead := strings.Replace(good, os.Getenv("ATTACHD_AZURITE_URL"), "http://127.0.0.1:9/devstoreaccount1", 1)

	srv := startServer(t, serverOptions{Config: &config{Extra: dead}})
	objs := someObjects(30)
	for _, o := range objs {
		srv.mustPut(t, o)
	}
	for _, o := range objs {
		srv.mustGet(t, o)
	}
	if n := localBlobs(t, srv.DataDir); n != len(objs) {
		t.Fatalf("%d blobs spooled during the outage, want %d", n, len(objs))
	}
	srv.stop(t)
	if err := os.WriteFile(srv.cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.restart(t)
	waitFor(t, 90*time.Second, "the spool to drain into the backend", func() bool { return localBlobs(t, srv.DataDir) == 0 })
	for _, o := range objs {
		srv.mustGet(t, o) // from the backend: each accepted upload got there
	}

	through := strings.Replace(dead, `write_mode = "spool"`, `write_mode = "through"`, 1)
	srv2 := startServer(t, serverOptions{Config: &config{Extra: through}})
	start := time.Now()
	code, err := put(t, srv2, "/through/down.mp3", []byte("x"))
	if err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("write-through store with the backend down: %d %v, want 503", code, err)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("write-through failure took %s", d)
	}
	// Nothing was stored: no sidecar, no spooled blob. (A GET answers 503
	// while the backend, which may hold the object, cannot be asked.)
	if _, err := os.Stat(filepath.Join(srv2.DataDir, "objects", "through", "down.mp3")); !os.IsNotExist(err) {
		t.Fatalf("failed write-through left a sidecar: %v", err)
	}
	if n := localBlobs(t, srv2.DataDir); n != 0 {
		t.Fatalf("failed write-through left %d blobs", n)
	}
}

// TestSharedContainer: two attachd processes on one Azure container serve
// the same objects; an index miss falls back to the backend.
func TestSharedContainer(t *testing.T) {
	toml := backendTOML(t, "azblob", "through", uniqueName("shared"))
	a := startServer(t, serverOptions{Config: &config{Extra: toml}})
	b := startServer(t, serverOptions{Config: &config{Extra: toml}})
	objs := someObjects(6)
	for _, o := range objs {
		a.mustPut(t, o)
	}
	for _, o := range objs {
		b.mustGet(t, o)
	}
	// Kazoo ≥ 4.3.106 fetches with the segment doubled: the prefix rule
	// must find the other node's object too.
	o := objs[2]
	b.mustGet(t, blobObj{o.path + o.path + "?media_id=x", o.body})
}

// TestStoragePluginKilledMidUpload kills the SFTP plugin again and again
// while large write-through uploads run: each upload either succeeds whole
// (201, and reads back exactly) or fails with a mapped 5xx and leaves
// nothing; the plugin comes back and later uploads succeed.
func TestStoragePluginKilledMidUpload(t *testing.T) {
	srv := startServer(t, serverOptions{Config: &config{Extra: backendTOML(t, "sftp", "through", uniqueName("kill"))}})
	stop := make(chan struct{})
	killed := make(chan int, 100)
	go func() {
		defer close(killed)
		for {
			select {
			case <-stop:
				return
			case <-time.After(400 * time.Millisecond):
			}
			if pid := childNamed(srv.proc.cmd.Process.Pid, "attachd-plugin-sftp"); pid != 0 {
				if syscallKill(pid) == nil {
					killed <- pid
				}
			}
		}
	}()
	var ok, failed int
	for i := range 6 {
		o := blobObj{fmt.Sprintf("/kill/%d.bin", i), make([]byte, 48<<20)}
		rand.Read(o.body)
		code, err := put(t, srv, o.path, o.body)
		switch {
		case err == nil && code == http.StatusCreated:
			ok++
			srv.mustGet(t, o)
		case err == nil && (code == http.StatusServiceUnavailable || code == http.StatusInternalServerError):
			failed++
			if _, err := os.Stat(filepath.Join(srv.DataDir, "objects", "kill", fmt.Sprint(i)+".bin")); !os.IsNotExist(err) {
				t.Fatalf("failed upload %d left a sidecar", i)
			}
		default:
			t.Fatalf("upload %d: %d %v", i, code, err)
		}
	}
	close(stop)
	n := 0
	for range killed {
		n++
	}
	t.Logf("%d uploads stored, %d failed with 5xx, plugin killed %d times", ok, failed, n)
	if n == 0 {
		t.Fatal("the plugin was never killed")
	}
	if n := localBlobs(t, srv.DataDir); n != 0 {
		t.Errorf("%d blobs left in the spool", n)
	}
	// The supervisor brings the plugin back: a new upload goes through.
	o := blobObj{"/kill/after.bin", []byte("after")}
	waitFor(t, 30*time.Second, "an upload after the plugin came back", func() bool {
		code, err := put(t, srv, o.path, o.body)
		return err == nil && code == http.StatusCreated
	})
	srv.mustGet(t, o)
}

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// TestSFTPOutageUnderLoad stops sshd for a while in the middle of a stream
// of uploads in spool mode: every upload is still accepted, and once sshd is
// back every accepted upload reaches the SFTP server (counted there).
func TestSFTPOutageUnderLoad(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssh-server is not installed")
		}
		t.Skip("openssh-server is not installed")
	}
	// Keys and config from the CI script; this test runs sshd itself, so
	// that it can stop and restart it on the same port.
	dir := t.TempDir()
	script := filepath.Join(repoRoot(), ".ci", "sshd.sh")
	if out, err := exec.Command(script, "start", dir).CombinedOutput(); err != nil {
		t.Fatalf("sshd.sh start: %v\n%s", err, out)
	}
	envFile, _ := os.ReadFile(filepath.Join(dir, "env"))
	if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
		t.Fatalf("sshd.sh stop: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(envFile), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "export "), "="); ok {
			t.Setenv(k, v)
		}
	}
	sshdBin, err := exec.LookPath("sshd")
	if err != nil {
		sshdBin = "/usr/sbin/sshd"
	}
	var sshd *exec.Cmd
	startSSHD := func() {
		sshd = exec.Command(sshdBin, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
		if err := sshd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "sshd listening", func() bool {
			c, err := net.Dial("tcp", os.Getenv("ATTACHD_SFTP_ADDR"))
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	stopSSHD := func() {
		// The listener's children carry the open sessions: end them too,
		// or the plugin's connection outlives the "outage".
		for range 20 {
			child := childNamed(sshd.Process.Pid, "sshd")
			if child == 0 {
				break
			}
			syscall.Kill(child, syscall.SIGKILL)
			time.Sleep(20 * time.Millisecond)
		}
		sshd.Process.Signal(syscall.SIGTERM)
		sshd.Wait()
	}
	startSSHD()
	t.Cleanup(func() {
		if sshd.ProcessState == nil {
			stopSSHD()
		}
	})

	container := uniqueName("load")
	srv := startServer(t, serverOptions{Config: &config{Extra: backendTOML(t, "sftp", "spool", container)}})
	var mu sync.Mutex
	var accepted []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := fmt.Sprintf("/load/%d/%d.mp3", c, i)
				code, err := put(t, srv, path, bytes.Repeat([]byte{byte(i)}, 20000))
				if err != nil || code != http.StatusCreated {
					t.Errorf("PUT %s during the outage: %d %v", path, code, err)
					return
				}
				mu.Lock()
				accepted = append(accepted, path[1:])
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second)
	stopSSHD()
	time.Sleep(3 * time.Second)
	startSSHD()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	waitFor(t, 2*time.Minute, "the spool to drain into the SFTP server", func() bool { return localBlobs(t, srv.DataDir) == 0 })
	root := filepath.Join(os.Getenv("ATTACHD_SFTP_ROOT"), container)
	missing := 0
	for _, k := range accepted {
		if _, err := os.Stat(filepath.Join(root, "objects", k)); err != nil {
			missing++
		}
	}
	var blobs []string
	names, _ := filepath.Glob(filepath.Join(root, "blobs", "*"))
	for _, n := range names {
		if !strings.HasPrefix(filepath.Base(n), ".attachd-tmp-") {
			blobs = append(blobs, n)
		}
	}
	t.Logf("%d uploads accepted while sshd went away and came back; %d sidecars and %d blobs on the server",
		len(accepted), len(accepted)-missing, len(blobs))
	if missing > 0 || len(blobs) != len(accepted) {
		t.Fatalf("%d of %d accepted uploads never reached the SFTP server (%d blobs there)", missing, len(accepted), len(blobs))
	}
	// A write cut by the outage leaves its temporary file behind; the
	// plugin removes it over its next connection.
	waitFor(t, 30*time.Second, "the cut writes' temporary files to be removed", func() bool {
		return len(tmpFiles(t, root)) == 0
	})
}

// tmpFiles lists the SFTP plugin's temporary files under root.
func tmpFiles(t *testing.T, root string) []string {
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".attachd-tmp-") {
			found = append(found, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
