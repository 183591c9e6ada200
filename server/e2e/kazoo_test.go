package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// committedMedia returns the committed media file of sc.
func (sc scenario) committedMedia(t testing.TB) []byte {
	t.Helper()
	return readCapture(t, sc.mediaFile())
}

// storeScenario replays sc's store capture and requires 201.
func storeScenario(t testing.TB, srv *server, sc scenario) {
	t.Helper()
	wantStored(t, sc.storeFile(), srv.replay(t, readCapture(t, sc.storeFile())))
}

// fetchScenario replays sc's fetch captures, old and new Kazoo, and checks
// each returns the media exactly.
func fetchScenario(t testing.TB, srv *server, sc scenario) {
	t.Helper()
	media := sc.committedMedia(t)
	if sc.hasExactGet() {
		wantObject(t, sc.exactGetFile(), srv.replay(t, readCapture(t, sc.exactGetFile())), media, sc.ContentType)
	}
	wantObject(t, sc.newGetFile(), srv.replay(t, readCapture(t, sc.newGetFile())), media, sc.ContentType)
}

// captureTarget returns the request-target of a raw request.
func captureTarget(raw []byte) string {
	line, _, _ := bytes.Cut(raw, []byte("\r\n"))
	parts := bytes.SplitN(line, []byte(" "), 3)
	return string(parts[1])
}

// pathOf drops the query from a request-target.
func pathOf(target string) string {
	p, _, _ := strings.Cut(target, "?")
	return p
}

// special lists the scenarios that need a configured server and have tests
// of their own.
var special = map[string]bool{
	"v03-overwrite-1": true, "v03-overwrite-2": true,
	"v05-multipart-base64": true, "v06-raw-base64-handler": true,
	"v18-auth": true, "v18-auth-digits": true,
}

// TestScenarios stores every URL shape of docs/kazoo.md §2 and every
// store-and-fetch vector of §6 on its own server and fetches it back both as
// Kazoo ≤ 4.3.105 (the stored URL) and as Kazoo ≥ 4.3.106 (segment appended
// again plus the metadata query) does.
func TestScenarios(t *testing.T) {
	t.Parallel()
	for _, sc := range allScenarios() {
		if special[sc.Name] {
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverOptions{})
			storeScenario(t, srv, sc)
			fetchScenario(t, srv, sc)
		})
	}
}

// TestShapesOnOneServer stores all shapes on one server, as when several
// storage plans point at one attachd, then fetches each: keys that are
// prefixes of others ("storage" and "storage/A_N"), shared media ids and
// the doubled segments must not be confused; every voicemail shape shares
// media id D, so only the path may decide. field_list [] is left out: its
// objects are named by the query alone, and under the key rule "path
// without query" the ?path= layout's key "storage" is an exact match for
// its GET /storage/?media_id=….
func TestShapesOnOneServer(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	var shapes []scenario
	for _, sc := range shapeScenarios() {
		if sc.hasExactGet() {
			shapes = append(shapes, sc)
		}
	}
	for _, sc := range shapes {
		storeScenario(t, srv, sc)
	}
	for _, sc := range shapes {
		fetchScenario(t, srv, sc)
	}
}

// TestVectors covers the §6 vectors that are not a plain store and fetch.
func TestVectors(t *testing.T) {
	t.Parallel()
	A := acctA

	t.Run("01-put-1MiB", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		doc := voicemailDoc("202004-" + hex32("v01"))
		aname := hex32("v01-att") + ".mp3"
		settings := plainURL("/p", "PUT")
		u := putURL(settings, doc, aname)
		media := pseudoRandom("v01", 1<<20)
		wantStored(t, "PUT 1 MiB", srv.replay(t, wireRequest{Method: "PUT", URL: u, ContentType: "audio/mpeg", Body: media}.bytes()))
		wantObject(t, "GET exact", srv.replay(t, wireRequest{Method: "GET", URL: u}.bytes()), media, "audio/mpeg")
		wantObject(t, "GET ≥ 4.3.106", srv.replay(t, wireRequest{Method: "GET", URL: fetchURL(u, &settings, doc, aname)}.bytes()), media, "audio/mpeg")
	})

	t.Run("03-overwrite", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		first, second := scenarioByName(t, "v03-overwrite-1"), scenarioByName(t, "v03-overwrite-2")
		storeScenario(t, srv, first)
		fetchScenario(t, srv, first)
		storeScenario(t, srv, second)
		fetchScenario(t, srv, second)
		if bytes.Equal(first.committedMedia(t), second.committedMedia(t)) {
			t.Fatal("the two versions are equal; the test proves nothing")
		}
	})

	t.Run("09-probe-53-bytes", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		sc := scenarioByName(t, "v08-probe")
		storeScenario(t, srv, sc)
		for _, f := range []string{sc.newGetFile(), sc.exactGetFile()} {
			r := srv.replay(t, readCapture(t, f))
			wantObject(t, f, r, []byte(probeBody), "text/plain")
			if len(r.Body) != 53 {
				t.Errorf("%s: %d bytes, want exactly 53", f, len(r.Body))
			}
		}
	})

	t.Run("11-pqc-literal", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		sc := scenarioByName(t, "shape-pqc-from")
		storeScenario(t, srv, sc)
		wantObject(t, "v11", srv.replay(t, readCapture(t, "v11-pqc-literal.get.http")), sc.committedMedia(t), sc.ContentType)
	})

	t.Run("12-field-list-empty", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		for _, name := range []string{"shape-field-list-empty", "shape-field-list-empty-fax"} {
			sc := scenarioByName(t, name)
			storeScenario(t, srv, sc)
		}
		for _, name := range []string{"shape-field-list-empty", "shape-field-list-empty-fax"} {
			fetchScenario(t, srv, scenarioByName(t, name))
		}
		wantStatus(t, "unknown media_id", srv.get(t, "/storage/?media_id="+unknownDoc+"&folder=new"), http.StatusNotFound)
	})

	t.Run("13-db-segment", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		sc := scenarioByName(t, "shape-db-segment")
		storeScenario(t, srv, sc)
		fetchScenario(t, srv, sc)
		wantStatus(t, "v13-split", srv.replay(t, readCapture(t, "v13-split.get.http")), http.StatusNotFound)
	})

	t.Run("14-utf8-space", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		sc := scenarioByName(t, "v14-utf8-space")
		storeScenario(t, srv, sc)
		fetchScenario(t, srv, sc)
		wantObject(t, "v14-escaped", srv.replay(t, readCapture(t, "v14-escaped.get.http")), sc.committedMedia(t), sc.ContentType)
	})

	t.Run("15-lenient-query", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		sc := scenarioByName(t, "v02-post-raw")
		storeScenario(t, srv, sc)
		wantObject(t, "v15", srv.replay(t, readCapture(t, "v15-query.get.http")), sc.committedMedia(t), sc.ContentType)
	})

	t.Run("16-unknown-404", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		wantStatus(t, "v16-unknown", srv.replay(t, readCapture(t, "v16-unknown.get.http")), http.StatusNotFound)
	})

	t.Run("17-malformed-multipart", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		for _, l := range literals() {
			if !strings.HasPrefix(l.Name, "v17-") {
				continue
			}
			raw := readCapture(t, l.Name+".http")
			if strings.Contains(l.Name, "no-boundary") {
				// A multipart type without its boundary parameter (Kazoo
				// 4.3.17–4.3.20 sent multipart/mixed so) is read with the
				// boundary of the body's first delimiter: the media part is
				// stored, never the whole body.
				wantStatus(t, l.Name, srv.replay(t, raw), http.StatusCreated)
				wantObject(t, l.Name+" then GET", srv.get(t, pathOf(captureTarget(raw))), mediaFor("v17", ".mp3"), "audio/mpeg")
				continue
			}
			wantStatus(t, l.Name, srv.replay(t, raw), http.StatusBadRequest)
			wantStatus(t, l.Name+" then GET", srv.get(t, pathOf(captureTarget(raw))), http.StatusNotFound)
		}
	})

	t.Run("18-basic-auth", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{Config: &config{Users: []user{
			{Name: "kazoo", Password: "s3cret", Permissions: "rw"},
			{Name: "recorder", Password: "2600", Permissions: "rw"},
		}}})
		sc := scenarioByName(t, "v18-auth")
		storeScenario(t, srv, sc)
		wantObject(t, sc.exactGetFile(), srv.replay(t, readCapture(t, sc.exactGetFile())), sc.committedMedia(t), sc.ContentType)
		// Kazoo ≥ 4.3.106 rebuilds the fetch URL with kz_http_util:urlunsplit,
		// which turns user:pass@ into userpass@ (non-numeric password), so
		// httpc sends Basic base64("kazoos3cret:"): the server must refuse it.
		wantStatus(t, sc.newGetFile()+" (Kazoo's mangled credentials)", srv.replay(t, readCapture(t, sc.newGetFile())), http.StatusUnauthorized)
		wantStatus(t, "GET without credentials", srv.get(t, pathOf(captureTarget(readCapture(t, sc.exactGetFile())))), http.StatusUnauthorized)

		digits := scenarioByName(t, "v18-auth-digits")
		storeScenario(t, srv, digits)
		fetchScenario(t, srv, digits)

		wantStatus(t, "v18-no-auth", srv.replay(t, readCapture(t, "v18-no-auth.store.http")), http.StatusUnauthorized)
		wantStatus(t, "v18-wrong-password", srv.replay(t, readCapture(t, "v18-wrong-password.store.http")), http.StatusUnauthorized)
		denied := wireRequest{Method: "GET", URL: "http://kazoo:s3cret@" + placeholderHost + v18Denied}
		wantStatus(t, "denied stores left nothing", srv.replay(t, denied.bytes()), http.StatusNotFound)
	})

	t.Run("21-fax-repeated", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		sc := scenarioByName(t, "shape-fax-inbound")
		storeScenario(t, srv, sc)
		fetchScenario(t, srv, sc)
		// fax_request retries the identical store (every 5 s in Kazoo).
		storeScenario(t, srv, sc)
		fetchScenario(t, srv, sc)
	})

	t.Run("22-200MB", func(t *testing.T) {
		t.Parallel()
		if testing.Short() {
			t.Skip("200 MB upload skipped in -short mode")
		}
		srv := startServer(t, serverOptions{})
		const size = 200_000_000
		target := "/p/" + A + "/202004-" + hex32("v22") + "/" + hex32("v22-att") + ".wav"
		head := wireRequest{Method: "PUT", URL: kazooBase + target, ContentType: "audio/wav"}.head(size)
		resp, err := srv.exchange(t, head, io.LimitReader(newRand("v22"), size), 3*time.Minute)
		if err != nil {
			t.Fatalf("PUT 200 MB: %v", err)
		}
		wantStored(t, "PUT 200 MB", readAll(t, resp))
		want := sha256.New()
		io.Copy(want, io.LimitReader(newRand("v22"), size))

		resp, err = srv.exchange(t, wireRequest{Method: "GET", URL: kazooBase + target}.bytes(), nil, 3*time.Minute)
		if err != nil {
			t.Fatalf("GET 200 MB: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET 200 MB: status %d", resp.StatusCode)
		}
		got := sha256.New()
		n, err := io.Copy(got, resp.Body)
		if err != nil {
			t.Fatalf("GET 200 MB after %d bytes: %v", n, err)
		}
		wantSum := hex.EncodeToString(want.Sum(nil))
		if hex.EncodeToString(got.Sum(nil)) != wantSum || n != size {
			t.Errorf("GET 200 MB: %d bytes with sha256 %x, want %d bytes with %s", n, got.Sum(nil), size, wantSum)
		}
		wantHeaders(t, "GET 200 MB", resp.Header, size, wantSum, "audio/wav")
	})

	t.Run("23-slow-client", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		target := "/p/" + A + "/202004-" + hex32("v23") + "/slow.mp3"
		old := pseudoRandom("v23-old", 32<<10)
		wantStored(t, "PUT old", srv.put(t, target, "audio/mpeg", old))

		// A client that stalls mid-body must block no one else.
		slow := pseudoRandom("v23-new", 64<<10)
		pr, pw := io.Pipe()
		defer pw.Close()
		head := wireRequest{Method: "PUT", URL: kazooBase + target, ContentType: "audio/mpeg"}.head(int64(len(slow)))
		type result struct {
			r   *response
			err error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := srv.exchange(t, head, pr, 30*time.Second)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			done <- result{r: &response{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}}
		}()
		pw.Write(slow[:16<<10])

		within := func(what string, f func() *response) *response {
			t.Helper()
			start := time.Now()
			r := f()
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s took %v while an upload stalls, want < 5 s", what, d)
			}
			return r
		}
		wantObject(t, "GET of the key being uploaded", within("GET", func() *response { return srv.get(t, target) }), old, "audio/mpeg")
		other := "/p/" + A + "/202004-" + hex32("v23") + "/other.mp3"
		wantStored(t, "PUT other", within("PUT other", func() *response { return srv.put(t, other, "audio/mpeg", old) }))
		wantObject(t, "GET other", within("GET other", func() *response { return srv.get(t, other) }), old, "audio/mpeg")

		// Trickle the rest; the answer must follow the last byte promptly.
		for off := 16 << 10; off < len(slow); off += 16 << 10 {
			time.Sleep(200 * time.Millisecond) // the client's pace, not synchronisation
			pw.Write(slow[off : off+16<<10])
		}
		last := time.Now()
		select {
		case res := <-done:
			if res.err != nil {
				t.Fatalf("slow PUT: %v", res.err)
			}
			if d := time.Since(last); d > 5*time.Second {
				t.Errorf("slow PUT answered %v after its last byte, want < 5 s", d)
			}
			wantStored(t, "slow PUT", res.r)
		case <-time.After(5 * time.Second):
			t.Fatalf("slow PUT not answered within 5 s of its last byte")
		}
		pw.Close()
		wantObject(t, "GET after slow PUT", srv.get(t, target), slow, "audio/mpeg")
	})

	t.Run("24-never-redirect", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOptions{})
		for _, c := range []string{"double-slash", "trailing-slash"} {
			store := readCapture(t, "v24-"+c+".store.http")
			r := srv.replay(t, store)
			if r.StatusCode >= 300 && r.StatusCode < 400 {
				t.Errorf("v24-%s: store answered %d (Location %q); httpc turns a redirected POST into a GET", c, r.StatusCode, r.Header.Get("Location"))
			}
			wantStored(t, "v24-"+c, r)
			wantObject(t, "v24-"+c+" GET", srv.replay(t, readCapture(t, "v24-"+c+".get.http")), captureBody(store), "audio/mpeg")
		}
		// POST to a directory-like URL (field_list [] is "/storage/").
		r := srv.replay(t, wireRequest{Method: "POST", URL: kazooBase + "/p/" + A + "/dir/", ContentType: "audio/mpeg", Body: []byte("x")}.bytes())
		if r.StatusCode >= 300 && r.StatusCode < 400 {
			t.Errorf("POST to a trailing-slash URL answered %d", r.StatusCode)
		}
	})
}

// TestBase64Modes checks [kazoo] base64 against multipart and raw stores
// (§6.5, §6.6): only a multipart media part is ever decoded.
func TestBase64Modes(t *testing.T) {
	t.Parallel()
	b64 := scenarioByName(t, "v05-multipart-base64")
	raw := scenarioByName(t, "v06-raw-base64-handler")
	bin := scenarioByName(t, "v04-multipart")
	encoded := func(t testing.TB) []byte {
		return []byte(base64.StdEncoding.EncodeToString(b64.committedMedia(t)))
	}
	tests := []struct {
		mode   string
		sc     scenario
		want   func(testing.TB) []byte // nil: 400
		reason string
	}{
		{"always", b64, b64.committedMedia, "§6.5 decoded"},
		{"auto", b64, b64.committedMedia, "auto detects a padded single-line base64 part (guess, see report)"},
		{"never", b64, encoded, "never decodes"},
		{"always", raw, raw.committedMedia, "§6.6 raw bodies are never decoded"},
		{"auto", raw, raw.committedMedia, "raw bodies are never decoded"},
		{"never", raw, raw.committedMedia, "raw bodies are never decoded"},
		{"auto", bin, bin.committedMedia, "binary part is not base64"},
		{"never", bin, bin.committedMedia, "binary part stored as sent"},
		{"always", bin, nil, "a part that is not base64 under always is malformed (guess, see report)"},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.sc.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverOptions{Config: &config{Base64: tt.mode}})
			r := srv.replay(t, readCapture(t, tt.sc.storeFile()))
			if tt.want == nil {
				wantStatus(t, tt.reason, r, http.StatusBadRequest)
				wantStatus(t, "GET after refused store", srv.replay(t, readCapture(t, tt.sc.exactGetFile())), http.StatusNotFound)
				return
			}
			wantStored(t, tt.reason, r)
			want := tt.want(t)
			wantObject(t, tt.reason+": exact GET", srv.replay(t, readCapture(t, tt.sc.exactGetFile())), want, tt.sc.ContentType)
			wantObject(t, tt.reason+": GET ≥ 4.3.106", srv.replay(t, readCapture(t, tt.sc.newGetFile())), want, tt.sc.ContentType)
		})
	}
}

// TestPathEscapes sends paths that try to leave the data directory. Dot
// segments, backslashes and NUL must be refused with 400; a %2F inside a
// segment keeps it one segment, so "a/../b" is a legal name that must not
// escape either (201 or 400). Afterwards nothing may exist outside the data
// directory and no request may have read a file outside it.
func TestPathEscapes(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	work := filepath.Join(root, "a", "b", "c")
	data := filepath.Join(work, "data")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	const secret = "e2e secret outside the data dir"
	if err := os.WriteFile(filepath.Join(root, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverOptions{DataDir: data, WorkDir: work})
	marker := "escape" + hex32(t.Name())[:8]
	up4 := "../../../../"
	tests := []struct {
		target     string
		oneSegment bool // a legal single segment: 201 or 400
	}{
		{"/../" + marker + "1", false},
		{"/p/" + up4 + marker + "2", false},
		{"/p/../../../../../../../" + marker + "3", false},
		{"/p/%2e%2e/%2e%2e/%2e%2e/%2e%2e/" + marker + "4", false},
		{"/p/%2E%2e/" + marker + "5", false},
		{"/p/.%2E/" + marker + "6", false},
		{"/p/./" + marker + "7", false},
		{"/p/%2e/" + marker + "8", false},
		{"/p/" + marker + "9/..", false},
		{`/p/a\..\..\..\..\` + marker + "10", false},
		{"/p/a%5C..%5C..%5C..%5C..%5C" + marker + "11", false},
		{"/p/a%00b/" + marker + "12", false},
		{"/p/" + marker + "13%00.mp3", false},
		{"/p/a%2F..%2Fb/" + marker + "14", true},
		{"/p/a%2F..%2F..%2F..%2F..%2F..%2F" + marker + "15", true},
		{"/p/..%2F..%2F..%2F..%2F..%2F" + marker + "16", true},
		{"/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f" + marker + "17", true},
		{"/p/%2Ftmp%2F" + marker + "18", true},
	}
	for _, tt := range tests {
		body := []byte("escape attempt " + tt.target)
		r := srv.put(t, tt.target, "application/octet-stream", body)
		if !tt.oneSegment {
			wantStatus(t, "PUT "+tt.target, r, http.StatusBadRequest)
			continue
		}
		if r.StatusCode != http.StatusCreated && r.StatusCode != http.StatusBadRequest {
			t.Errorf("PUT %s: status %d, want 201 or 400\n%s", tt.target, r.StatusCode, r)
		}
		if r.StatusCode == http.StatusCreated {
			wantObject(t, "GET "+tt.target, srv.get(t, tt.target), body, "application/octet-stream")
		}
	}
	for _, target := range []string{
		"/" + up4 + "secret.txt",
		"/p/" + up4 + "../secret.txt",
		"/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
		"/..%2F..%2F..%2F..%2Fsecret.txt",
		"/..%2f..%2f..%2f..%2f..%2fsecret.txt",
		`/..\..\..\..\secret.txt`,
		"/..%5C..%5C..%5C..%5Csecret.txt",
		"/p/x?path=" + up4 + "secret.txt",
	} {
		r := srv.get(t, target)
		if bytes.Contains(r.Body, []byte(secret)) {
			t.Errorf("GET %s returned a file outside the data dir", target)
		}
		wantError(t, "GET "+target, r, http.StatusBadRequest, http.StatusNotFound)
	}

	// Nothing outside the data directory: root holds only a/b/c/data and
	// secret.txt, and no marker file appeared above root.
	allowed := map[string]bool{root: true, filepath.Join(root, "a"): true, filepath.Join(root, "a", "b"): true,
		work: true, filepath.Join(root, "secret.txt"): true}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", p, err)
			return nil
		}
		if p == data || strings.HasPrefix(p, data+string(filepath.Separator)) {
			return filepath.SkipDir
		}
		if !allowed[p] {
			t.Errorf("written outside the data dir: %s", p)
		}
		return nil
	})
	for _, dir := range []string{filepath.Dir(root), filepath.Dir(filepath.Dir(root)), "/tmp"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), marker) {
				t.Errorf("written outside the data dir: %s", filepath.Join(dir, e.Name()))
			}
		}
	}
}

// TestKeyCanonicalisation checks that spellings Kazoo can produce for one
// name reach one key and that different names stay different.
func TestKeyCanonicalisation(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	tests := []struct {
		store string
		same  []string // GET targets naming the same key
		other []string // GET targets naming other keys (404)
	}{
		{"/p/canon/my%20file%2B1.mp3",
			[]string{"/p/canon/my%20file+1.mp3", "/p//canon///my%20file%2b1.mp3", "/p/canon/my%20file%2B1.mp3?x=1"},
			[]string{"/p/canon/my+file+1.mp3", "/p/canon/my%20file%201.mp3"}},
		{"/p/canon/\xc3\xa9.mp3", []string{"/p/canon/%C3%A9.mp3", "/p/canon/%c3%a9.mp3"}, []string{"/p/canon/e.mp3"}},
		{"/p/canon/a%2Fb.mp3", []string{"/p/canon/a%2fb.mp3"}, []string{"/p/canon/a/b.mp3"}},
		{"/p/%41cct/x.mp3", []string{"/p/Acct/x.mp3"}, []string{"/p/acct/x.mp3"}},
		{"/p/canon/!$()*~.mp3", []string{"/p/canon/%21%24%28%29%2A%7E.mp3"}, nil},
		{"/p/canon/q.mp3?x=1&y=a/b", []string{"/p/canon/q.mp3", "/p/canon/q.mp3?y=2"}, nil},
	}
	for _, tt := range tests {
		body := pseudoRandom(tt.store, 3000)
		wantStored(t, "PUT "+tt.store, srv.put(t, tt.store, "audio/mpeg", body))
		for _, g := range append([]string{tt.store}, tt.same...) {
			wantObject(t, "GET "+g+" after PUT "+tt.store, srv.get(t, g), body, "audio/mpeg")
		}
		for _, g := range tt.other {
			wantStatus(t, "GET "+g+" after PUT "+tt.store, srv.get(t, g), http.StatusNotFound)
		}
	}
}

// TestShortBody stores bodies shorter than their Content-Length, with the
// client half-closing or dropping the connection: nothing may be stored,
// and an earlier version must stay intact, also across a restart.
func TestShortBody(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	type tc struct {
		name      string
		previous  bool
		halfClose bool
		multipart bool
	}
	var tests []tc
	for _, previous := range []bool{false, true} {
		for _, halfClose := range []bool{false, true} {
			for _, multipart := range []bool{false, true} {
				tests = append(tests, tc{fmt.Sprintf("prev=%v,halfclose=%v,multipart=%v", previous, halfClose, multipart), previous, halfClose, multipart})
			}
		}
	}
	prev := func(tt tc) []byte { return pseudoRandom("short-prev-"+tt.name, 256<<10) }
	target := func(tt tc) string { return "/p/" + acctA + "/short/" + hex32(tt.name) + ".mp3" }
	check := func(t *testing.T, when string) {
		for _, tt := range tests {
			r := srv.get(t, target(tt))
			if tt.previous {
				wantObject(t, when+" "+tt.name, r, prev(tt), "audio/mpeg")
			} else {
				wantStatus(t, when+" "+tt.name, r, http.StatusNotFound)
			}
		}
	}
	for _, tt := range tests {
		if tt.previous {
			wantStored(t, tt.name+" previous", srv.put(t, target(tt), "audio/mpeg", prev(tt)))
		}
		req := wireRequest{Method: "PUT", URL: kazooBase + target(tt), ContentType: "audio/mpeg", Body: pseudoRandom(tt.name, 1<<20)}
		if tt.multipart {
			doc := voicemailDoc("202004-" + hex32(tt.name))
			b := boundaryFor(tt.name)
			req.ContentType = "multipart/form-data; boundary=" + b
			req.Body = multipartBody(b, doc, "short.mp3", "audio/mpeg", req.Body)
		}
		full := rewriteHost(t, req.bytes(), srv.Addr)
		cut := len(full) - len(req.Body)/2
		conn, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(full[:cut]); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.halfClose {
			conn.(*net.TCPConn).CloseWrite()
			if resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "PUT"}); err == nil {
				r := readAll(t, resp)
				wantError(t, tt.name+": answer to a short body", r)
			}
		}
		conn.Close()
	}
	check(t, "after short bodies")
	// Let the server notice the dropped connections, then restart it.
	deadline := time.Now().Add(5 * time.Second)
	for len(tmpEntries(t, srv.DataDir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	srv.stop(t)
	srv.restart(t)
	if left := tmpEntries(t, srv.DataDir); len(left) > 0 {
		t.Errorf("tmp/ after restart: %v, want empty", left)
	}
	check(t, "after restart")
}

// TestOverwriteIsAtomic overwrites a 4 MiB object 20 times while readers
// GET it: every GET must be a complete version, never a mix or a prefix.
func TestOverwriteIsAtomic(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	const size, versions = 4 << 20, 21
	target := "/p/" + acctA + "/atomic/" + hex32("atomic") + ".wav"
	bodies := make([][]byte, versions)
	known := map[string]int{}
	for i := range bodies {
		bodies[i] = pseudoRandom(fmt.Sprint("atomic-", i), size)
		known[sha(bodies[i])] = i
	}
	wantStored(t, "version 0", srv.put(t, target, "audio/wav", bodies[0]))

	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("http://" + srv.Addr + target)
				if err != nil {
					t.Errorf("GET during overwrites: %v", err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Errorf("GET during overwrites: reading body: %v", err)
					return
				}
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET during overwrites: status %d", resp.StatusCode)
					return
				}
				v, ok := known[sha(body)]
				if !ok {
					t.Errorf("GET during overwrites: %d bytes matching no version", len(body))
					return
				}
				if etag := resp.Header.Get("ETag"); etag != `"`+sha(bodies[v])+`"` {
					t.Errorf("GET during overwrites: body is version %d but ETag %s", v, etag)
				}
				reads.Add(1)
			}
		})
	}
	for i := 1; i < versions; i++ {
		r := srv.put(t, target, "audio/wav", bodies[i])
		if r.StatusCode != http.StatusCreated {
			t.Errorf("overwrite %d: status %d", i, r.StatusCode)
		}
	}
	close(stop)
	wg.Wait()
	if reads.Load() == 0 {
		t.Errorf("no GET completed during the overwrites")
	}
	t.Logf("%d complete GETs during %d overwrites", reads.Load(), versions-1)
	wantObject(t, "final GET", srv.get(t, target), bodies[versions-1], "audio/wav")
}

// TestHead checks that HEAD answers GET's headers without a body: a HEAD and
// a GET pipelined on one connection must parse as two responses.
func TestHead(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	target := "/p/" + acctA + "/head/" + hex32("head") + ".mp3"
	media := pseudoRandom("head", 5000)
	wantStored(t, "PUT", srv.put(t, target, "audio/mpeg", media))

	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	head := rewriteHost(t, wireRequest{Method: "HEAD", URL: kazooBase + target}.bytes(), srv.Addr)
	get := rewriteHost(t, wireRequest{Method: "GET", URL: kazooBase + target}.bytes(), srv.Addr)
	if _, err := conn.Write(append(head, get...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	if err != nil {
		t.Fatalf("HEAD: %v", err)
	}
	hr := readAll(t, resp)
	if hr.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: status %d\n%s", hr.StatusCode, hr)
	}
	wantHeaders(t, "HEAD", hr.Header, int64(len(media)), sha(media), "audio/mpeg")
	resp, err = http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("GET pipelined after HEAD does not parse (did HEAD send a body?): %v", err)
	}
	wantObject(t, "GET pipelined after HEAD", readAll(t, resp), media, "audio/mpeg")

	r := srv.replay(t, wireRequest{Method: "HEAD", URL: kazooBase + "/p/" + acctA + "/head/missing.mp3"}.bytes())
	wantStatus(t, "HEAD of a missing key", r, http.StatusNotFound)
}

// TestGetResponses checks §6.16: success is 200 (never 204, also for an
// empty object; never 206) with no Content-Encoding, even when the client
// offers gzip, and a missing key is 404.
func TestGetResponses(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	text := []byte(strings.Repeat("some random content: compressible text\n", 2000))
	audio := pseudoRandom("gzip-audio", 70000)
	tests := []struct {
		name, contentType string
		body              []byte
	}{
		{"text.txt", "text/plain", text},
		{"audio.mp3", "audio/mpeg", audio},
		{"empty.wav", "audio/wav", []byte{}},
		{"page.html", "text/html", []byte("<html><body>" + strings.Repeat("voicemail ", 500) + "</body></html>")},
	}
	for _, tt := range tests {
		target := "/p/" + acctA + "/get/" + tt.name
		wantStored(t, "PUT "+tt.name, srv.put(t, target, tt.contentType, tt.body))
		for _, extra := range [][]string{nil, {"accept-encoding: gzip"}, {"accept-encoding: gzip, deflate, br"}} {
			r := srv.get(t, target, extra...)
			what := fmt.Sprintf("GET %s %q", tt.name, extra)
			if r.StatusCode == http.StatusNoContent || r.StatusCode == http.StatusPartialContent {
				t.Errorf("%s: status %d, Kazoo accepts only 200", what, r.StatusCode)
			}
			wantObject(t, what, r, tt.body, tt.contentType)
		}
	}
	r := srv.get(t, "/p/"+acctA+"/get/missing.mp3", "accept-encoding: gzip")
	wantStatus(t, "GET missing", r, http.StatusNotFound)
}

// TestMaxBody checks max_body: a body of exactly max_body is stored, a
// bigger one gets 413 and leaves nothing, also when the server answers
// before reading the body.
func TestMaxBody(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	srv := startServer(t, serverOptions{Config: &config{MaxBody: limit}})
	tests := []struct {
		name string
		size int
		want int
	}{
		{"exact", limit, http.StatusCreated},
		{"one-over", limit + 1, http.StatusRequestEntityTooLarge},
		{"far-over", 16 * limit, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		target := "/p/" + acctA + "/max/" + tt.name + ".wav"
		head := wireRequest{Method: "PUT", URL: kazooBase + target, ContentType: "audio/wav"}.head(int64(tt.size))
		resp, err := srv.exchange(t, head, io.LimitReader(newRand(tt.name), int64(tt.size)), 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		r := readAll(t, resp)
		wantStatus(t, tt.name, r, tt.want)
		g := srv.get(t, target)
		if tt.want == http.StatusCreated {
			body := make([]byte, tt.size)
			newRand(tt.name).Read(body)
			wantObject(t, tt.name+" GET", g, body, "audio/wav")
		} else {
			wantStatus(t, tt.name+" GET", g, http.StatusNotFound)
		}
	}
	// A multipart store whose body exceeds max_body.
	doc := voicemailDoc("202004-" + hex32("max-mp"))
	b := boundaryFor("max-mp")
	body := multipartBody(b, doc, "max.mp3", "audio/mpeg", pseudoRandom("max-mp", 2*limit))
	target := "/p/" + acctA + "/max/multipart.mp3"
	req := wireRequest{Method: "PUT", URL: kazooBase + target, ContentType: "multipart/form-data; boundary=" + b, Body: body}
	resp, err := srv.exchange(t, req.bytes(), nil, 30*time.Second)
	if err != nil {
		t.Fatalf("multipart: %v", err)
	}
	wantStatus(t, "multipart over max_body", readAll(t, resp), http.StatusRequestEntityTooLarge)
	wantStatus(t, "multipart over max_body GET", srv.get(t, target), http.StatusNotFound)
}

// TestErrorStatusesAreMapped sends requests a server might refuse and checks
// every refusal uses a status Kazoo can map (docs/kazoo.md §5) and no store
// is ever answered 3xx (§6.24).
func TestErrorStatusesAreMapped(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOptions{})
	reqs := []wireRequest{
		{Method: "DELETE", URL: kazooBase + "/p/x.mp3"},
		{Method: "PATCH", URL: kazooBase + "/p/x.mp3", ContentType: "audio/mpeg", Body: []byte("x")},
		{Method: "PUT", URL: kazooBase + "/", ContentType: "audio/mpeg", Body: []byte("x")},
		{Method: "POST", URL: kazooBase + "/?media_id=x", ContentType: "audio/mpeg", Body: []byte("x")},
		{Method: "PUT", URL: kazooBase + "/p/x.mp3", ContentType: "multipart/form-data; boundary=\"", Body: []byte("x")},
	}
	for _, req := range reqs {
		r := srv.replay(t, req.bytes())
		what := firstLine(req.bytes())
		if r.StatusCode >= 300 && r.StatusCode < 400 {
			t.Errorf("%s: status %d; Kazoo never follows store redirects safely", what, r.StatusCode)
		}
		if r.StatusCode >= 400 && !mappedStatus(r.StatusCode) {
			t.Errorf("%s: status %d is not in Kazoo's mapped list", what, r.StatusCode)
		}
	}
}
