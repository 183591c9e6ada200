package dav

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attachd/attachd/server/store"
)

func TestPutAtomicStatusAndETag(t *testing.T) {
	ts := newTestServer(t, Options{})
	code, hdr, _ := ts.do("PUT", "/dav/a.txt", nil, "hello")
	if code != http.StatusCreated {
		t.Fatalf("first PUT: %d, want 201", code)
	}
	etag := hdr.Get("ETag")
	code, hdr, _ = ts.do("PUT", "/dav/a.txt", nil, "hello again")
	if code != http.StatusNoContent {
		t.Fatalf("overwrite PUT: %d, want 204", code)
	}
	if hdr.Get("ETag") == etag || hdr.Get("ETag") == "" {
		t.Fatalf("overwrite kept ETag %q", etag)
	}
	etag = hdr.Get("ETag")
	code, hdr, body := ts.do("GET", "/dav/a.txt", nil, "")
	if code != 200 || body != "hello again" || hdr.Get("ETag") != etag {
		t.Fatalf("GET: %d %q ETag %q, want 200 %q ETag %q", code, body, hdr.Get("ETag"), "hello again", etag)
	}
	_, _, body = ts.do("PROPFIND", "/dav/a.txt", map[string]string{"Depth": "0"}, "")
	if !strings.Contains(body, "<D:getetag>"+etag+"</D:getetag>") {
		t.Fatalf("PROPFIND getetag differs from %s:\n%s", etag, body)
	}
	if code, _, _ := ts.do("PUT", "/dav/missing/a.txt", nil, "x"); code != http.StatusConflict {
		t.Fatalf("PUT without parent: %d, want 409", code)
	}
}

// A body shorter than its Content-Length is never committed: the old
// version stays (x/net/webdav would have truncated it).
func TestPutShortBodyKeepsOldVersion(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("PUT", "/dav/keep.bin", nil, "old bytes")
	req, _ := http.NewRequest("PUT", ts.srv.URL+"/dav/keep.bin", &shortReader{n: 10})
	req.ContentLength = 1000
	res, err := ts.srv.Client().Do(req)
	if err == nil {
		res.Body.Close()
		if res.StatusCode < 400 {
			t.Fatalf("short PUT answered %d", res.StatusCode)
		}
	}
	_, _, body := ts.do("GET", "/dav/keep.bin", nil, "")
	if body != "old bytes" {
		t.Fatalf("after a short PUT the object is %q, want the old version", body)
	}
}

type shortReader struct{ n int }

func (r *shortReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, context.Canceled // the client gives up
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func TestOCMtimeAndContentType(t *testing.T) {
	ts := newTestServer(t, Options{})
	code, hdr, _ := ts.do("PUT", "/dav/song.mp3", map[string]string{"X-OC-Mtime": "1700000000"}, "ID3")
	if code != 201 || hdr.Get("X-OC-Mtime") != "accepted" {
		t.Fatalf("PUT with X-OC-Mtime: %d, X-OC-Mtime %q", code, hdr.Get("X-OC-Mtime"))
	}
	_, hdr, _ = ts.do("GET", "/dav/song.mp3", nil, "")
	if lm := hdr.Get("Last-Modified"); lm != time.Unix(1700000000, 0).UTC().Format(http.TimeFormat) {
		t.Errorf("Last-Modified %q, want the X-OC-Mtime", lm)
	}
	if ct := hdr.Get("Content-Type"); ct != "audio/mpeg" {
		t.Errorf("Content-Type %q, want audio/mpeg from the name", ct)
	}
	// A declared type is kept as it is, never sniffed.
	ts.put("k/voicemail.bin", "RIFF....WAVE", store.Info{ContentType: "audio/x-kazoo"})
	_, hdr, _ = ts.do("GET", "/dav/k/voicemail.bin", nil, "")
	if ct := hdr.Get("Content-Type"); ct != "audio/x-kazoo" {
		t.Errorf("Content-Type %q, want the stored audio/x-kazoo", ct)
	}
}

func TestRangedGet(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("PUT", "/dav/r.bin", nil, "0123456789")
	code, _, body := ts.do("GET", "/dav/r.bin", map[string]string{"Range": "bytes=2-5"}, "")
	if code != http.StatusPartialContent || body != "2345" {
		t.Fatalf("ranged GET: %d %q, want 206 \"2345\"", code, body)
	}
}

func TestPropfindDepthInfinityRefused(t *testing.T) {
	ts := newTestServer(t, Options{})
	code, _, body := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "infinity"}, "")
	if code != http.StatusForbidden || !strings.Contains(body, "<D:propfind-finite-depth/>") {
		t.Fatalf("Depth: infinity: %d %s, want 403 with propfind-finite-depth", code, body)
	}
}

func TestUndeclaredPrefixIs400(t *testing.T) {
	ts := newTestServer(t, Options{})
	body := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><X:foo/></D:prop></D:propfind>`
	if code, _, _ := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "0"}, body); code != 400 {
		t.Fatalf("undeclared prefix: %d, want 400", code)
	}
	if code, _, _ := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "0"}, "<not xml"); code != 400 {
		t.Fatalf("malformed body: %d, want 400", code)
	}
}

func TestOptionsWithoutUser(t *testing.T) {
	ts := newTestServer(t, Options{})
	code, hdr, _ := ts.do("OPTIONS", "/dav/", map[string]string{"X-Test-User": "nobody"}, "")
	if code != 200 || !strings.Contains(hdr.Get("DAV"), "2") {
		t.Fatalf("unauthenticated OPTIONS: %d DAV %q", code, hdr.Get("DAV"))
	}
	code, hdr, _ = ts.do("PROPFIND", "/dav/", map[string]string{"X-Test-User": "nobody"}, "")
	if code != 401 || hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("unauthenticated PROPFIND: %d, want 401 with a challenge", code)
	}
}

func TestKazooPropsAndView(t *testing.T) {
	ts := newTestServer(t, Options{ByDate: true})
	const acct = "4e3005310add6229778caf6babfe7cfb"
	// 2026-11-25 10:20:30 UTC in Gregorian seconds (docs/kazoo.md §4).
	greg := time.Date(2026, 11, 25, 10, 20, 30, 0, time.UTC).Unix() + 62167219200
	meta := `{"fetch_query":{"caller_id_name":"Alice: \"A\"/B","caller_id_number":"1001","mailbox":"2000","timestamp":"` +
		strconv.FormatInt(greg, 10) + `","length":"4200","folder":"new","media_id":"m1"}}`
	o1 := ts.put(acct+"/d1/vm.mp3", "one", store.Info{ContentType: "audio/mpeg", Meta: []byte(meta), DocID: "d1"})
	o2 := ts.put(acct+"/d2/vm.mp3", "two", store.Info{ContentType: "audio/mpeg", Meta: []byte(meta), DocID: "d2"})
	ts.do("PUT", "/dav/"+acct+"/notes.txt", nil, "not Kazoo's")

	_, _, body := ts.do("PROPFIND", "/dav/"+acct+"/d1/vm.mp3", map[string]string{"Depth": "0"}, "")
	for _, want := range []string{"<A:caller-id-name>Alice: \"A\"/B</A:caller-id-name>", "<A:mailbox>2000</A:mailbox>",
		"<A:timestamp>2026-11-25T10:20:30Z</A:timestamp>", "<A:length>4200</A:length>", "<A:media-id>m1</A:media-id>",
		"<D:getcontenttype>audio/mpeg</D:getcontenttype>"} {
		if !strings.Contains(body, want) {
			t.Errorf("PROPFIND lacks %s:\n%s", want, body)
		}
	}
	// Live Kazoo properties are read-only.
	patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:A="` + NSAttachd +
		`"><D:set><D:prop><A:mailbox>x</A:mailbox></D:prop></D:set></D:propertyupdate>`
	if code, _, body := ts.do("PROPPATCH", "/dav/"+acct+"/d1/vm.mp3", nil, patch); code != 207 || !strings.Contains(body, "403") {
		t.Errorf("PROPPATCH of a Kazoo property: %d %s, want 207 with 403", code, body)
	}

	day := time.Unix(greg-62167219200, 0).Local()
	dayDir := "/dav/@by-date/" + acct + "/" + day.Format("2006-01-02") + "/"
	code, _, body := ts.do("PROPFIND", dayDir, map[string]string{"Depth": "1"}, "")
	if code != 207 {
		t.Fatalf("PROPFIND %s: %d", dayDir, code)
	}
	hrefs := regexp.MustCompile(`<D:href>([^<]*)</D:href>`).FindAllStringSubmatch(body, -1)
	if len(hrefs) != 3 {
		t.Fatalf("want the day and 2 files, got %v", hrefs)
	}
	base := day.Format("15.04.05") + " Alice_ _A__B → 2000"
	names := []string{base + ".mp3", base + " (2).mp3"}
	etags := map[string]string{names[0]: o1.ETag(), names[1]: o2.ETag()}
	for _, name := range names {
		u := dayDir + escapePath(name)
		code, hdr, got := ts.do("GET", u, nil, "")
		if code != 200 || hdr.Get("ETag") != etags[name] {
			t.Errorf("GET %s: %d ETag %s, want 200 %s", u, code, hdr.Get("ETag"), etags[name])
		}
		if got != "one" && got != "two" {
			t.Errorf("GET %s: %q", u, got)
		}
	}
	if strings.Contains(body, "notes") {
		t.Errorf("a file written over WebDAV is in the view:\n%s", body)
	}
	if code, _, _ := ts.do("DELETE", dayDir+escapePath(names[0]), nil, ""); code != 403 {
		t.Errorf("DELETE in the view: %d, want 403", code)
	}
	// A view file can be copied out into the tree, not moved.
	if code, _, _ := ts.do("MOVE", dayDir+escapePath(names[0]), map[string]string{"Destination": "/dav/moved.mp3"}, ""); code != 403 {
		t.Errorf("MOVE out of the view: %d, want 403", code)
	}
	if code, _, _ := ts.do("COPY", dayDir+escapePath(names[0]), map[string]string{"Destination": "/dav/case-42.mp3"}, ""); code != 201 {
		t.Errorf("COPY out of the view: %d, want 201", code)
	}
	if _, hdr, _ := ts.do("HEAD", "/dav/case-42.mp3", nil, ""); hdr.Get("ETag") != o1.ETag() {
		t.Errorf("copied view file has ETag %s, want %s", hdr.Get("ETag"), o1.ETag())
	}
	if code, _, _ := ts.do("COPY", "/dav/case-42.mp3", map[string]string{"Destination": dayDir + "x.mp3"}, ""); code != 403 {
		t.Errorf("COPY into the view: %d, want 403", code)
	}
	// The view is listed at the root.
	_, _, body = ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "1"}, "")
	if !strings.Contains(body, "<D:href>/dav/@by-date/</D:href>") {
		t.Errorf("root listing lacks @by-date:\n%s", body)
	}
}

func escapePath(name string) string {
	return string(appendEscapedKey(nil, store.EscapeSegment(name)))
}

func TestWin32Proppatch(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("PUT", "/dav/w.txt", nil, "x")
	body := `<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:">` +
		`<D:set><D:prop><Z:Win32CreationTime>Tue, 24 Nov 2026 10:00:00 GMT</Z:Win32CreationTime>` +
		`<Z:Win32LastAccessTime>Tue, 24 Nov 2026 10:00:00 GMT</Z:Win32LastAccessTime>` +
		`<Z:Win32LastModifiedTime>Mon, 02 Mar 2026 09:08:07 GMT</Z:Win32LastModifiedTime>` +
		`<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>`
	code, _, resp := ts.do("PROPPATCH", "/dav/w.txt", nil, body)
	if code != 207 || strings.Contains(resp, "403") || strings.Contains(resp, "424") {
		t.Fatalf("Win32 PROPPATCH: %d %s", code, resp)
	}
	_, hdr, _ := ts.do("HEAD", "/dav/w.txt", nil, "")
	if lm := hdr.Get("Last-Modified"); lm != "Mon, 02 Mar 2026 09:08:07 GMT" {
		t.Errorf("Last-Modified %q, want Win32LastModifiedTime", lm)
	}
}

func TestDeadPropsPersist(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServerIn(t, dir, Options{})
	ts.do("MKCOL", "/dav/c/", nil, "")
	ts.do("PUT", "/dav/c/f", nil, "x")
	set := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:p="urn:x"><D:set><D:prop><p:color xml:lang="en">blue <p:b>bold</p:b></p:color></D:prop></D:set></D:propertyupdate>`
	for _, u := range []string{"/dav/c/", "/dav/c/f"} {
		if code, _, body := ts.do("PROPPATCH", u, nil, set); code != 207 || !strings.Contains(body, "200 OK") {
			t.Fatalf("PROPPATCH %s: %d %s", u, code, body)
		}
	}
	ts.close()
	ts = newTestServerIn(t, dir, Options{})
	get := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><color xmlns="urn:x"/></D:prop></D:propfind>`
	for _, u := range []string{"/dav/c/", "/dav/c/f"} {
		_, _, body := ts.do("PROPFIND", u, map[string]string{"Depth": "0"}, get)
		var ms struct {
			Resp []struct {
				Prop struct {
					Color struct {
						Lang  string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
						Inner string `xml:",chardata"`
						B     string `xml:"urn:x b"`
					} `xml:"urn:x color"`
				} `xml:"propstat>prop"`
			} `xml:"response"`
		}
		if err := xml.Unmarshal([]byte(body), &ms); err != nil || len(ms.Resp) != 1 {
			t.Fatalf("PROPFIND %s after restart: %v\n%s", u, err, body)
		}
		c := ms.Resp[0].Prop.Color
		if c.Lang != "en" || c.B != "bold" || !strings.Contains(c.Inner, "blue") {
			t.Errorf("PROPFIND %s after restart: %+v\n%s", u, c, body)
		}
	}
}

const lockBody = `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>` +
	`<D:locktype><D:write/></D:locktype><D:owner><D:href>me</D:href></D:owner></D:lockinfo>`

func TestLocksPersistAndRelease(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServerIn(t, dir, Options{})
	// LOCK on an unmapped URL creates the resource (davfs2, Finder).
	code, hdr, _ := ts.do("LOCK", "/dav/l.txt", nil, lockBody)
	if code != http.StatusCreated {
		t.Fatalf("LOCK unmapped: %d, want 201", code)
	}
	tok := hdr.Get("Lock-Token")
	ts.close()
	ts = newTestServerIn(t, dir, Options{})
	if code, _, _ := ts.do("PUT", "/dav/l.txt", nil, "x"); code != http.StatusLocked {
		t.Fatalf("PUT without the token after a restart: %d, want 423", code)
	}
	if code, _, _ := ts.do("PUT", "/dav/l.txt", map[string]string{"If": "(" + tok + ")"}, "x"); code != 204 {
		t.Fatalf("PUT with the token: %d, want 204", code)
	}
	if code, _, _ := ts.do("DELETE", "/dav/l.txt", map[string]string{"If": "(" + tok + ")"}, ""); code != 204 {
		t.Fatalf("DELETE with the token: %d", code)
	}
	// The lock went with the resource: a new one at the same URL is free.
	if code, _, _ := ts.do("PUT", "/dav/l.txt", nil, "y"); code != 201 {
		t.Fatalf("PUT after DELETE: %d, want 201 (lock released)", code)
	}
	code, hdr, _ = ts.do("LOCK", "/dav/l.txt", nil, lockBody)
	if code != 200 {
		t.Fatalf("LOCK: %d", code)
	}
	tok = hdr.Get("Lock-Token")
	if code, _, _ := ts.do("MOVE", "/dav/l.txt", map[string]string{"Destination": "/dav/m.txt", "If": "(" + tok + ")"}, ""); code != 201 {
		t.Fatalf("MOVE with the token: %d", code)
	}
	if code, _, _ := ts.do("PUT", "/dav/l.txt", nil, "z"); code != 201 {
		t.Fatalf("PUT at the moved-from URL: %d, want 201 (lock released)", code)
	}
	if code, _, _ := ts.do("PUT", "/dav/m.txt", nil, "z"); code != 204 {
		t.Fatalf("PUT at the destination: %d, want 204 (the lock did not move)", code)
	}
}

func TestIfHeaderETags(t *testing.T) {
	ts := newTestServer(t, Options{})
	_, hdr, _ := ts.do("PUT", "/dav/e.txt", nil, "x")
	etag := hdr.Get("ETag")
	tests := []struct {
		ifh  string
		want int
	}{
		{"([" + etag + "])", 204},
		{`(["nope"])`, 412},
		{"(Not [" + etag + "])", 412},
		{`(Not ["nope"])`, 204},
		{`(<opaquelocktoken:none>) (Not <DAV:no-lock>)`, 204},
		{`(<opaquelocktoken:none>)`, 412},
	}
	for _, tt := range tests {
		code, hdr, _ := ts.do("PUT", "/dav/e.txt", map[string]string{"If": tt.ifh}, "x")
		if code != tt.want {
			t.Errorf("If: %s: %d, want %d", tt.ifh, code, tt.want)
		}
		if code == 204 && hdr.Get("ETag") != etag {
			t.Errorf("same bytes, different ETag %s", hdr.Get("ETag"))
		}
	}
	if code, _, _ := ts.do("PUT", "/dav/e.txt", map[string]string{"If-None-Match": "*"}, "x"); code != 412 {
		t.Errorf("If-None-Match: * on an existing file: %d, want 412", code)
	}
}

func TestSharedLocks(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("PUT", "/dav/s.txt", nil, "x")
	shared := strings.Replace(lockBody, "<D:exclusive/>", "<D:shared/>", 1)
	c1, h1, _ := ts.do("LOCK", "/dav/s.txt", nil, shared)
	c2, _, _ := ts.do("LOCK", "/dav/s.txt", nil, shared)
	c3, _, _ := ts.do("LOCK", "/dav/s.txt", nil, lockBody)
	if c1 != 200 || c2 != 200 || c3 != 423 {
		t.Fatalf("shared, shared, exclusive: %d %d %d, want 200 200 423", c1, c2, c3)
	}
	if code, _, _ := ts.do("UNLOCK", "/dav/s.txt", map[string]string{"Lock-Token": h1.Get("Lock-Token")}, ""); code != 204 {
		t.Fatalf("UNLOCK: %d", code)
	}
	_, _, body := ts.do("PROPFIND", "/dav/s.txt", map[string]string{"Depth": "0"}, "")
	if n := strings.Count(body, "<D:activelock>"); n != 1 {
		t.Fatalf("lockdiscovery shows %d locks, want 1:\n%s", n, body)
	}
}

func TestOverwriteDefaultAndPublicURL(t *testing.T) {
	ts := newTestServer(t, Options{PublicURL: "https://files.example.com/rec"})
	ts.do("PUT", "/dav/a", nil, "a")
	ts.do("PUT", "/dav/b", nil, "b")
	// Behind the proxy the client names the public host and path.
	code, _, _ := ts.do("COPY", "/dav/a", map[string]string{"Destination": "https://files.example.com/rec/dav/b"}, "")
	if code != 204 {
		t.Fatalf("COPY onto an existing file without Overwrite: %d, want 204 (Overwrite: T)", code)
	}
	if _, _, body := ts.do("GET", "/dav/b", nil, ""); body != "a" {
		t.Fatalf("b = %q after COPY", body)
	}
	if code, _, _ := ts.do("COPY", "/dav/a", map[string]string{"Destination": "https://elsewhere.example.com/rec/dav/c"}, ""); code != 502 {
		t.Fatalf("COPY to another server: %d, want 502", code)
	}
	if code, _, _ := ts.do("COPY", "/dav/a", map[string]string{"Destination": "/dav/b", "Overwrite": "F"}, ""); code != 412 {
		t.Fatalf("Overwrite: F onto a file: %d, want 412", code)
	}
	_, _, body := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "1"}, "")
	if !strings.Contains(body, "<D:href>/rec/dav/a</D:href>") {
		t.Fatalf("hrefs lack the public path:\n%s", body)
	}
}

func TestJunk(t *testing.T) {
	ts := newTestServer(t, Options{HideJunk: JunkHide})
	if code, _, _ := ts.do("PUT", "/dav/.DS_Store", nil, "x"); code != 201 {
		t.Fatalf("hide: PUT .DS_Store: %d", code)
	}
	_, _, body := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "1"}, "")
	if strings.Contains(body, "DS_Store") {
		t.Fatalf("hide: .DS_Store listed:\n%s", body)
	}
	ts = newTestServer(t, Options{HideJunk: JunkRefuse})
	for _, name := range []string{".DS_Store", "._x.mp3", "Thumbs.db", "desktop.ini"} {
		if code, _, _ := ts.do("PUT", "/dav/"+name, nil, "x"); code != 403 {
			t.Errorf("refuse: PUT %s: %d, want 403", name, code)
		}
	}
}

func TestQuotaProps(t *testing.T) {
	ts := newTestServer(t, Options{})
	body := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>`
	_, _, resp := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "0"}, body)
	if !regexp.MustCompile(`<D:quota-available-bytes>[1-9][0-9]*</D:quota-available-bytes>`).MatchString(resp) {
		t.Fatalf("no quota-available-bytes:\n%s", resp)
	}
}

func TestCollectionGet(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("PUT", "/dav/x y.txt", nil, "x")
	code, hdr, body := ts.do("GET", "/dav/", nil, "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(body, `href="/dav/x%20y.txt"`) {
		t.Fatalf("GET /dav/: %d %s\n%s", code, hdr.Get("Content-Type"), body)
	}
}

// Names with XML and URL metacharacters come back as well-formed XML whose
// hrefs decode to the names.
func TestOddNames(t *testing.T) {
	ts := newTestServer(t, Options{})
	names := []string{"a&b<c>.txt", "sp ace+plus.txt", "ünï \"quote\" 'apos'.txt", "per%cent.txt"}
	for _, n := range names {
		if code, _, _ := ts.do("PUT", "/dav/"+escapePath(n), nil, n); code != 201 {
			t.Fatalf("PUT %q: %d", n, code)
		}
	}
	_, _, body := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "1"}, "")
	var ms struct {
		Hrefs []string `xml:"response>href"`
	}
	if err := xml.Unmarshal([]byte(body), &ms); err != nil {
		t.Fatalf("PROPFIND answer is not XML: %v\n%s", err, body)
	}
	got := map[string]bool{}
	for _, h := range ms.Hrefs {
		u, err := url.PathUnescape(strings.TrimPrefix(h, "/dav/"))
		if err != nil {
			t.Fatalf("href %q: %v", h, err)
		}
		got[u] = true
	}
	for _, n := range names {
		if !got[n] {
			t.Errorf("%q not listed; hrefs %q", n, ms.Hrefs)
		}
		if _, _, b := ts.do("GET", "/dav/"+escapePath(n), nil, ""); b != n {
			t.Errorf("GET %q = %q", n, b)
		}
	}
}

// A cached listing is dropped as soon as the index changes, whoever changed it.
func TestListingCacheFollowsTheIndex(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.put("c/one", "1", store.Info{})
	list := func() string {
		_, _, body := ts.do("PROPFIND", "/dav/c/", map[string]string{"Depth": "1"}, "")
		return body
	}
	if b := list(); !strings.Contains(b, "/dav/c/one") {
		t.Fatalf("first listing:\n%s", b)
	}
	list()                             // served from the cache
	ts.put("c/two", "2", store.Info{}) // as Kazoo would, behind WebDAV's back
	if b := list(); !strings.Contains(b, "/dav/c/two") {
		t.Fatalf("listing after a store lacks it:\n%s", b)
	}
	if _, err := ts.st.Update(context.Background(), "c/one", func(o *store.Object) bool {
		o.Props = []byte(`[{"ns":"urn:x","name":"p","xml":"v"}]`)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if b := list(); !strings.Contains(b, `<p xmlns="urn:x">v</p>`) {
		t.Fatalf("listing after a property change lacks it:\n%s", b)
	}
}
