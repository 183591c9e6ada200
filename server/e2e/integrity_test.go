package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCorruptIndexAtStart damages index.db while attachd is stopped: the
// restarted server must move it aside, rebuild it from the sidecars and
// serve every object, instead of saying ready and answering 500.
func TestCorruptIndexAtStart(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	bodies := map[string][]byte{}
	for i := range 20 {
		target := fmt.Sprintf("/p/%s/integrity/%02d.mp3", acctA, i)
		bodies[target] = pseudoRandom(target, 10<<10)
		wantStored(t, target, srv.put(t, target, "audio/mpeg", bodies[target]))
	}
	srv.stop(t)
	idx := filepath.Join(srv.DataDir, "index.db")
	if err := os.WriteFile(idx, []byte(strings.Repeat("not a database ", 1000)), 0o640); err != nil {
		t.Fatal(err)
	}
	srv.restart(t)
	for target, body := range bodies {
		wantObject(t, "GET after rebuild", srv.get(t, target), body, "audio/mpeg")
	}
	if aside, _ := filepath.Glob(idx + ".corrupt-*"); len(aside) == 0 {
		t.Error("the corrupt index was not kept aside")
	}
}

// TestReadyzSeesTheDataDir: /readyz turns 503 when the index is removed or
// the data directory cannot be written, and 200 again once it can.
func TestReadyzSeesTheDataDir(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	ready := func() int {
		// The store's health is remembered for a second.
		time.Sleep(1100 * time.Millisecond)
		code, _, _ := davDo(t, "GET", "http://"+srv.Addr+"/readyz", nil, nil)
		return code
	}
	if code := ready(); code != http.StatusOK {
		t.Fatalf("healthy: /readyz %d", code)
	}
	tmp := filepath.Join(srv.DataDir, "tmp")
	if err := os.Rename(tmp, tmp+".away"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(tmp, nil, 0o600)
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Errorf("data dir not writable: /readyz %d, want 503", code)
	}
	os.Remove(tmp)
	os.Rename(tmp+".away", tmp)
	if code := ready(); code != http.StatusOK {
		t.Errorf("writable again: /readyz %d", code)
	}
	idx := filepath.Join(srv.DataDir, "index.db")
	if err := os.Rename(idx, idx+".gone"); err != nil {
		t.Fatal(err)
	}
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Errorf("index gone: /readyz %d, want 503", code)
	}
	os.Rename(idx+".gone", idx)
}

// TestMissingBlobIsServerError removes an object's bytes behind the
// server's back: GET answers 500 (never a 200 with a wrong body, never a
// 404 that would say it was never stored), and a WebDAV COPY of it makes no
// second broken object.
func TestMissingBlobIsServerError(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	target := fmt.Sprintf("/p/%s/integrity/lost.mp3", acctA)
	wantStored(t, "store", srv.put(t, target, "audio/mpeg", pseudoRandom("lost", 4096)))
	blobs, _ := filepath.Glob(filepath.Join(srv.DataDir, "blobs", "*", "*"))
	if len(blobs) != 1 {
		t.Fatalf("%d blobs, want 1", len(blobs))
	}
	os.Remove(blobs[0])
	wantStatus(t, "GET of a lost object", srv.get(t, target), http.StatusInternalServerError)
	key := strings.TrimPrefix(target, "/")
	code, _, _ := davDo(t, "COPY", srv.davURL(key), map[string]string{"Destination": srv.davURL(key + ".copy")}, nil)
	if code < 500 {
		t.Errorf("COPY of a lost object: %d, want 5xx", code)
	}
	wantStatus(t, "GET of the copy", srv.get(t, target+".copy"), http.StatusNotFound)
}
