package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestQuota: a [[quota]] and a user's quota_bytes refuse stores over them
// with 507 on both routes, leaving nothing on disk; overwrites count the
// difference, deletes free; WebDAV shows the quota as RFC 4331 properties
// and /metrics the usage per quota.
func TestQuota(t *testing.T) {
	t.Parallel()
	if clusterNodes(t) > 0 {
		t.Skip("one node's data directory is inspected")
	}
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	toml := "[[quota]]\nprefix = \"/acct\"\nbytes = 1000\nobjects = 3\n\n" +
		fmt.Sprintf("[[users]]\nname = \"admin\"\npassword_hash = %q\npermissions = \"rw\"\n\n", hash("adminpw")) +
		fmt.Sprintf("[[users]]\nname = \"cust\"\npassword_hash = %q\nroot = \"/cust\"\npermissions = \"rw\"\nquota_bytes = 100\n", hash("custpw"))
	srv := davStart(t, toml)
	admin := map[string]string{"Authorization": "Basic " + basicAuth("admin", "adminpw"), "Content-Type": "audio/mpeg"}
	cust := map[string]string{"Authorization": "Basic " + basicAuth("cust", "custpw"), "Content-Type": "audio/mpeg"}
	kazoo := func(h map[string]string, method, key string, n int) int {
		t.Helper()
		code, _, _ := davDo(t, method, "http://"+srv.Addr+"/"+key, h, pseudoRandom(key, n))
		return code
	}
	blobs := func() int {
		m, err := filepath.Glob(filepath.Join(srv.DataDir, "blobs", "*", "*"))
		if err != nil {
			t.Fatal(err)
		}
		return len(m)
	}
	nothingLeft := func(what string, wantBlobs int) {
		t.Helper()
		if n := blobs(); n != wantBlobs {
			t.Errorf("%s: %d blobs, want %d", what, n, wantBlobs)
		}
		if e := tmpEntries(t, srv.DataDir); len(e) != 0 {
			t.Errorf("%s: tmp holds %v", what, e)
		}
	}

	if code := kazoo(admin, "PUT", "acct/a.mp3", 600); code != http.StatusCreated {
		t.Fatalf("Kazoo PUT within the quota: %d", code)
	}
	if code := kazoo(admin, "PUT", "acct/b.mp3", 401); code != http.StatusInsufficientStorage {
		t.Fatalf("Kazoo PUT over the quota: %d, want 507", code)
	}
	nothingLeft("refused Kazoo PUT", 1)
	if code := kazoo(admin, "GET", "acct/b.mp3", 0); code != http.StatusNotFound {
		t.Errorf("refused object: GET %d", code)
	}
	if code, _, b := davDo(t, "PUT", srv.davURL("acct/c.mp3"), admin, pseudoRandom("c", 401)); code != http.StatusInsufficientStorage {
		t.Fatalf("WebDAV PUT over the quota: %d %s, want 507", code, b)
	}
	nothingLeft("refused WebDAV PUT", 1)
	if code, _, b := davDo(t, "COPY", srv.davURL("acct/a.mp3"), map[string]string{"Authorization": admin["Authorization"],
		"Destination": srv.davURL("acct/copy.mp3")}, nil); code != http.StatusInsufficientStorage {
		t.Fatalf("WebDAV COPY over the quota: %d %s, want 507", code, b)
	}
	// An overwrite counts the difference: 600 → 1000 fits exactly.
	if code := kazoo(admin, "PUT", "acct/a.mp3", 1000); code != http.StatusCreated {
		t.Fatalf("Kazoo overwrite that fits: %d", code)
	}
	nothingLeft("overwrite", 1)

	propfind := func(h map[string]string, path string) (avail, used string) {
		t.Helper()
		hdr := map[string]string{"Authorization": h["Authorization"], "Depth": "0", "Content-Type": "application/xml"}
		body := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>`
		code, _, b := davDo(t, "PROPFIND", srv.davURL(path), hdr, []byte(body))
		if code != http.StatusMultiStatus {
			t.Fatalf("PROPFIND %s: %d %s", path, code, b)
		}
		get := func(name string) string {
			m := regexp.MustCompile(`<D:` + name + `>(\d+)</D:` + name + `>`).FindSubmatch(b)
			if m == nil {
				t.Fatalf("PROPFIND %s lacks %s:\n%s", path, name, b)
			}
			return string(m[1])
		}
		return get("quota-available-bytes"), get("quota-used-bytes")
	}
	if avail, used := propfind(admin, "acct/"); avail != "0" || used != "1000" {
		t.Errorf("quota properties of /acct: available %s used %s, want 0 and 1000", avail, used)
	}
	// Deletes free (Kazoo never deletes: WebDAV does).
	if code, _, _ := davDo(t, "DELETE", srv.davURL("acct/a.mp3"), admin, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	if avail, used := propfind(admin, "acct/"); avail != "1000" || used != "0" {
		t.Errorf("after a delete: available %s used %s, want 1000 and 0", avail, used)
	}
	if code, _, b := davDo(t, "PUT", srv.davURL("acct/c.mp3"), admin, pseudoRandom("c", 700)); code != http.StatusCreated {
		t.Fatalf("WebDAV PUT after a delete: %d %s", code, b)
	}

	// A user's quota_bytes, on its root, on both routes.
	if code := kazoo(cust, "PUT", "v.mp3", 60); code != http.StatusCreated {
		t.Fatalf("user's Kazoo PUT within its quota: %d", code)
	}
	if code := kazoo(cust, "PUT", "w.mp3", 41); code != http.StatusInsufficientStorage {
		t.Fatalf("user's Kazoo PUT over its quota: %d, want 507", code)
	}
	if code, _, b := davDo(t, "PUT", srv.davURL("w.mp3"), cust, pseudoRandom("w", 41)); code != http.StatusInsufficientStorage {
		t.Fatalf("user's WebDAV PUT over its quota: %d %s, want 507", code, b)
	}
	nothingLeft("user's refused PUTs", 2)
	if avail, used := propfind(cust, ""); avail != "40" || used != "60" {
		t.Errorf("quota properties of the user's root: available %s used %s, want 40 and 60", avail, used)
	}

	res, err := http.Get("http://" + srv.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`attachd_quota_used_bytes{quota="/acct"} 700`,
		`attachd_quota_used_objects{quota="/acct"} 1`,
		`attachd_quota_limit_bytes{quota="/acct"} 1000`,
		`attachd_quota_limit_objects{quota="/acct"} 3`,
		`attachd_quota_used_bytes{quota="/cust"} 60`,
		`attachd_quota_limit_bytes{quota="/cust"} 100`,
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
