package dav

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/store"
)

// TestScopes drives every method with every way of naming something
// outside the user's root, as a read-only and a read-write user rooted at
// acct1: nothing outside may be read, listed, written, locked or used as a
// source or destination, and the read-only user may change nothing at all.
func TestScopes(t *testing.T) {
	ts := newTestServer(t, Options{ByDate: true})
	ts.put("acct1/in.txt", "inside", store.Info{})
	secret := ts.put("acct2/secret.txt", "SECRET", store.Info{})
	ts.put("top-secret.txt", "SECRET", store.Info{})

	escapes := []string{
		"/dav/../acct2/secret.txt",
		"/dav/%2e%2e/acct2/secret.txt",
		"/dav/%2E%2E%2Facct2%2Fsecret.txt",
		"/dav/..%2facct2/secret.txt",
		"/dav/x/%2e%2e/%2e%2e/acct2/secret.txt",
		"/dav/%2e%2e/top-secret.txt",
		"/dav/.%2e/top-secret.txt",
		"/dav/..\\acct2\\secret.txt",
		"/dav/%00/../acct2/secret.txt",
		"/acct2/secret.txt",
	}
	destinations := append([]string{
		"http://HOST/dav/../acct2/new.txt",
		"http://HOST/dav/%2e%2e/acct2/new.txt",
		"http://HOST/acct2/new.txt",
		"http://other.example/dav/new.txt",
	}, escapes...)
	methods := []string{"GET", "HEAD", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK"}
	const patch = `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="urn:x">1</x></D:prop></D:set></D:propertyupdate>`
	bodyFor := map[string]string{"PUT": "overwritten", "PROPPATCH": patch, "LOCK": lockBody}

	check := func(t *testing.T, what string, code int, body string) {
		t.Helper()
		if code >= 200 && code < 300 {
			t.Errorf("%s: %d, want a refusal", what, code)
		}
		if strings.Contains(body, "SECRET") || strings.Contains(body, "acct2") || strings.Contains(body, "top-secret") {
			t.Errorf("%s: the answer shows what is outside the root: %s", what, body)
		}
	}
	for _, user := range []string{"ro", "rw"} {
		t.Run(user, func(t *testing.T) {
			for _, m := range methods {
				for _, p := range escapes {
					hdr := map[string]string{"X-Test-User": user, "Depth": "1"}
					if m == "COPY" || m == "MOVE" {
						hdr["Destination"] = "/dav/copied.txt"
					}
					if m == "UNLOCK" {
						hdr["Lock-Token"] = "<opaquelocktoken:x>"
					}
					code, _, body := ts.do(m, p, hdr, bodyFor[m])
					check(t, m+" "+p, code, body)
				}
				if m != "COPY" && m != "MOVE" {
					continue
				}
				for _, d := range destinations {
					d = strings.Replace(d, "HOST", strings.TrimPrefix(ts.srv.URL, "http://"), 1)
					hdr := map[string]string{"X-Test-User": user, "Destination": d}
					code, _, body := ts.do(m, "/dav/in.txt", hdr, "")
					if user == "rw" && code < 300 {
						// Inside the root after canonicalisation is fine; check it landed there.
						if _, err := ts.st.Stat(context.Background(), "acct2/new.txt"); err == nil {
							t.Errorf("%s Destination %s reached acct2", m, d)
						}
						ts.put("acct1/in.txt", "inside", store.Info{})
						continue
					}
					check(t, m+" Destination "+d, code, body)
				}
			}
			// If: resource tags outside the root evaluate to false (412), and a
			// lock outside can neither be refreshed nor released.
			hdr := map[string]string{"X-Test-User": user, "If": "</dav/../acct2/secret.txt> ([" + secret.ETag() + "])"}
			if code, _, _ := ts.do("PUT", "/dav/in.txt", hdr, "x"); code != 412 && code != 403 && code != 400 {
				t.Errorf("If: tag outside the root: %d, want 412, 400 or 403", code)
			}
			// PROPFIND Depth 1 at the user's root lists only the root.
			code, _, body := ts.do("PROPFIND", "/dav/", map[string]string{"X-Test-User": user, "Depth": "1"}, "")
			if code != 207 || !strings.Contains(body, "<D:href>/dav/in.txt</D:href>") {
				t.Errorf("PROPFIND root: %d\n%s", code, body)
			}
			check(t, "PROPFIND root listing", 400, body)
			_, _, body = ts.do("PROPFIND", "/dav/@by-date/", map[string]string{"X-Test-User": user, "Depth": "1"}, "")
			check(t, "PROPFIND @by-date", 400, body)
		})
	}
	// The read-only user changes nothing, even inside its root.
	for _, m := range []string{"PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK", "UNLOCK"} {
		hdr := map[string]string{"X-Test-User": "ro", "Destination": "/dav/other.txt", "Lock-Token": "<x>"}
		if code, _, _ := ts.do(m, "/dav/in.txt", hdr, bodyFor[m]); code != http.StatusForbidden {
			t.Errorf("read-only %s inside the root: %d, want 403", m, code)
		}
	}
	for _, key := range []string{"acct2/secret.txt", "top-secret.txt"} {
		f, _, err := ts.st.Open(context.Background(), key)
		if err != nil {
			t.Fatalf("%s is gone: %v", key, err)
		}
		b := make([]byte, 16)
		n, _ := f.Read(b)
		f.Close()
		if string(b[:n]) != "SECRET" {
			t.Errorf("%s changed to %q", key, b[:n])
		}
	}
	if locks, _ := ts.st.Locks(context.Background(), "acct2", true); len(locks) > 0 {
		t.Errorf("locks outside the root: %+v", locks)
	}
}
