package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// localTOML is backendTOML with the bytes in the data directory: the
// plugin stays configured, as `attachd migrate --to` needs it.
func localTOML(remote string) string {
	return strings.Replace(remote, `backend = "azblob"`, `backend = "local"`, 1)
}

// migrateState reads the progress of a migration from the data directory.
func migrateState(t *testing.T, dataDir string) (done int64, ok bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "migrate.json"))
	if err != nil {
		return 0, false
	}
	var st struct {
		Done struct {
			Objects int64 `json:"objects"`
		} `json:"done"`
	}
	if json.Unmarshal(b, &st) != nil {
		return 0, false
	}
	return st.Done.Objects, true
}

func runMigrate(t *testing.T, cfgPath, dataDir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(attachdBinary(t), append([]string{"migrate", "--config", cfgPath, "--data-dir", dataDir}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestMigrateLocalToAzblob: 200 objects in the data directory are migrated
// into Azurite beside the running server; the first run is killed -9 halfway
// and the next continues it; a run with the server stopped copies nothing
// more; then, with [storage] backend = "azblob" and the data directory's
// blobs gone, every object is served byte for byte from the backend, and the
// backend alone rebuilds the index.
func TestMigrateLocalToAzblob(t *testing.T) {
	remote := backendTOML(t, "azblob", "spool", uniqueName("migrate"))
	srv := startServer(t, serverOptions{Config: &config{Extra: localTOML(remote)}})
	var objs []blobObj
	for i, o := range someObjects(200) {
		if len(o.body) > 1<<20 {
			o.body = o.body[:1<<20+i] // 200 objects, about 45 MiB
		}
		objs = append(objs, o)
		srv.mustPut(t, o)
	}

	// The first run, beside the server, killed -9 once it has done some.
	cmd := exec.Command(attachdBinary(t), "migrate", "--to", "azblob", "--config", srv.cfgPath, "--data-dir", srv.DataDir, "--workers", "1")
	out := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if n, ok := migrateState(t, srv.DataDir); ok && n >= 40 {
			cmd.Process.Kill()
			<-exited
			if n >= 200 {
				t.Fatalf("the migration finished before it could be killed:\n%s", out)
			}
			t.Logf("killed -9 after %d of 200 objects", n)
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("migrate exited before it could be killed: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			t.Fatalf("no progress within 2 minutes:\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Stored while it was down: the next run copies it too.
	late := blobObj{"/p/acct/late/vm.mp3", []byte("stored during the migration")}
	srv.mustPut(t, late)
	objs = append(objs, late)

	o, err := runMigrate(t, srv.cfgPath, srv.DataDir, "--to", "azblob")
	if err != nil || !strings.Contains(o, "finished an interrupted migration: 201 objects") {
		t.Fatalf("resumed migration: %v\n%s", err, o)
	}
	if !strings.Contains(o, "copied 201/201 objects (100%)") || !strings.Contains(o, "MiB") {
		t.Errorf("no progress lines in the output of a run without a terminal:\n%s", o)
	}
	if strings.Contains(o, " 0 copied") {
		t.Errorf("the resumed run copied nothing:\n%s", o)
	}

	// Deleted after it was copied: the final run finds it in the target.
	gone := objs[5]
	req, _ := http.NewRequest(http.MethodDelete, "http://"+srv.Addr+"/dav"+gone.path, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	objs = append(objs[:5:5], objs[6:]...)
	if o, err := runMigrate(t, srv.cfgPath, srv.DataDir, "--to", "azblob", "--prune"); err == nil || !strings.Contains(o, "stop it first") {
		t.Fatalf("--prune beside a running server: %v\n%s", err, o)
	}

	// The final run, with the server stopped: everything is there already.
	srv.stop(t)
	o, err = runMigrate(t, srv.cfgPath, srv.DataDir, "--to", "azblob")
	if err != nil || !strings.Contains(o, "migrated 200 objects") || !strings.Contains(o, "0 copied and verified, 200 there already") ||
		!strings.Contains(o, "holds 1 objects the index does not") {
		t.Fatalf("final migration: %v\n%s", err, o)
	}
	o, err = runMigrate(t, srv.cfgPath, srv.DataDir, "--to", "azblob", "--prune")
	if err != nil || !strings.Contains(o, "pruned 1 objects") {
		t.Fatalf("migration with --prune: %v\n%s", err, o)
	}

	// Switch: the bytes leave the data directory, the backend serves them.
	if err := os.WriteFile(srv.cfgPath, []byte(remote), 0o600); err != nil {
		t.Fatal(err)
	}
	blobs, _ := filepath.Glob(filepath.Join(srv.DataDir, "blobs", "*", "*"))
	for _, b := range blobs {
		os.Remove(b)
	}
	srv.restart(t)
	for _, o := range objs {
		srv.mustGet(t, o)
	}
	if resp, err := http.Get("http://" + srv.Addr + gone.path); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("object deleted during the migration: %v %v, want 404", resp, err)
	}
	srv.stop(t)
	if strings.Contains(srv.proc.out.String(), "attachd migrate") {
		t.Errorf("a stranded-objects warning after a complete migration:\n%s", srv.proc.out)
	}

	// The backend alone rebuilds the index.
	fresh := filepath.Join(t.TempDir(), "fresh")
	ro, err := exec.Command(attachdBinary(t), "reindex", "--config", srv.cfgPath, "--data-dir", fresh).CombinedOutput()
	if err != nil || !strings.Contains(string(ro), "reindexed 200 objects") {
		t.Fatalf("reindex from the migrated backend: %v\n%s", err, ro)
	}
}

// TestMigrateChecksumMismatch: a blob whose bytes no longer match the SHA-256
// the index holds is not copied, the run fails naming its key, and the other
// objects are copied.
func TestMigrateChecksumMismatch(t *testing.T) {
	remote := backendTOML(t, "azblob", "spool", uniqueName("mismatch"))
	srv := startServer(t, serverOptions{Config: &config{Extra: localTOML(remote)}})
	objs := someObjects(6)
	for _, o := range objs {
		srv.mustPut(t, o)
	}
	srv.stop(t)
	bad := objs[2] // 1000 bytes
	blob := blobOf(t, srv.DataDir, bad.path)
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // same size, other bytes
	if err := os.WriteFile(blob, b, 0o640); err != nil {
		t.Fatal(err)
	}
	o, err := runMigrate(t, srv.cfgPath, srv.DataDir, "--to", "azblob")
	if err == nil || !strings.Contains(o, "1 objects not copied") || !strings.Contains(o, "checksum mismatch") ||
		!strings.Contains(o, strings.TrimPrefix(bad.path, "/")) {
		t.Fatalf("migration of a corrupt blob: %v\n%s", err, o)
	}
	// Run again: the others are there, the bad one fails again.
	o, err = runMigrate(t, srv.cfgPath, srv.DataDir, "--to", "azblob")
	if err == nil || !strings.Contains(o, "checksum mismatch") {
		t.Fatalf("second migration of a corrupt blob: %v\n%s", err, o)
	}
}

// blobOf finds the blob of the object at path from its sidecar.
func blobOf(t *testing.T, dataDir, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "objects", filepath.FromSlash(strings.TrimPrefix(path, "/"))))
	if err != nil {
		t.Fatal(err)
	}
	var sc struct {
		Blob string `json:"blob"`
	}
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dataDir, "blobs", sc.Blob[:2], sc.Blob)
}

// TestStrandedWarning: [storage] backend switched without migrating. From
// "local" to azblob the bytes stay readable in the data directory but are in
// no backend; from azblob back to "local" they are nowhere attachd looks.
// Either way the log says so at start, with the migrate command to run; and
// once migrated, no more.
func TestStrandedWarning(t *testing.T) {
	remote := backendTOML(t, "azblob", "through", uniqueName("stranded"))
	srv := startServer(t, serverOptions{Config: &config{Extra: localTOML(remote)}})
	objs := someObjects(20)
	for _, o := range objs {
		srv.mustPut(t, o)
	}
	// Give the check of this start time to record the backend.
	waitFor(t, 10*time.Second, "the backend recorded", func() bool {
		b, _ := os.ReadFile(filepath.Join(srv.DataDir, "storage-backend"))
		return strings.TrimSpace(string(b)) == "local"
	})
	srv.stop(t)

	if err := os.WriteFile(srv.cfgPath, []byte(remote), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.restart(t)
	want := fmt.Sprintf("attachd migrate --from local --to azblob --config %s --data-dir %s", srv.cfgPath, srv.DataDir)
	waitFor(t, 10*time.Second, "the stranded-objects warning", func() bool {
		return strings.Contains(srv.proc.out.String(), want)
	})
	if !strings.Contains(srv.proc.out.String(), "only in the data directory") {
		t.Errorf("warning does not say where the bytes are:\n%s", srv.proc.out)
	}
	for _, o := range objs {
		srv.mustGet(t, o) // still served, from the data directory
	}
	srv.stop(t)

	// From azblob (which holds nothing) back to local, with the data
	// directory's blobs gone: nowhere.
	if err := os.WriteFile(filepath.Join(srv.DataDir, "storage-backend"), []byte("azblob\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	blobs, _ := filepath.Glob(filepath.Join(srv.DataDir, "blobs", "*", "*"))
	for _, b := range blobs {
		os.Remove(b)
	}
	if err := os.WriteFile(srv.cfgPath, []byte(localTOML(remote)), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.restart(t)
	want = fmt.Sprintf("attachd migrate --from azblob --to local --config %s", srv.cfgPath)
	waitFor(t, 10*time.Second, "the missing-objects warning", func() bool {
		return strings.Contains(srv.proc.out.String(), want)
	})
	if !strings.Contains(srv.proc.out.String(), "about 20 of the index's 20 objects") {
		t.Errorf("warning without the estimate:\n%s", srv.proc.out)
	}
	srv.stop(t)
}
