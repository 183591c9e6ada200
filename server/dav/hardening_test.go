package dav

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/attachd/attachd/server/store"
)

// setProps returns a PROPPATCH body setting each name of urn:x to its value.
func setProps(kv ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x"><D:set><D:prop>`)
	for i := 0; i < len(kv); i += 2 {
		b.WriteString("<x:" + kv[i] + ">" + kv[i+1] + "</x:" + kv[i] + ">")
	}
	b.WriteString(`</D:prop></D:set></D:propertyupdate>`)
	return b.String()
}

// propstats maps each property of a one-resource multistatus to its status code.
func propstats(t *testing.T, body string) map[string]int {
	t.Helper()
	var ms struct {
		Resp []struct {
			Propstat []struct {
				Prop struct {
					Any []struct{ XMLName xml.Name } `xml:",any"`
				} `xml:"prop"`
				Status string `xml:"status"`
			} `xml:"propstat"`
		} `xml:"response"`
	}
	if err := xml.Unmarshal([]byte(body), &ms); err != nil || len(ms.Resp) != 1 {
		t.Fatalf("not a one-response multistatus (%v):\n%s", err, body)
	}
	out := map[string]int{}
	for _, ps := range ms.Resp[0].Propstat {
		var code int
		if f := strings.Fields(ps.Status); len(f) > 1 {
			code = atoi(f[1])
		}
		for _, p := range ps.Prop.Any {
			out[p.XMLName.Local] = code
		}
	}
	return out
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// Dead properties are capped per resource by count and bytes; a PROPPATCH
// past either is refused as RFC 4918 §9.2.1 says (507 for what did not fit,
// 424 for the rest) and changes nothing.
func TestDeadPropsLimits(t *testing.T) {
	ts := newTestServer(t, Options{MaxProps: 3, MaxPropsBytes: 100})
	ts.do("MKCOL", "/dav/c/", nil, "")
	ts.do("PUT", "/dav/c/f", nil, "x")
	get := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`
	for _, u := range []string{"/dav/c/", "/dav/c/f"} {
		code, _, body := ts.do("PROPPATCH", u, nil, setProps("a", "1", "b", "2"))
		if got := propstats(t, body); code != 207 || got["a"] != 200 || got["b"] != 200 {
			t.Fatalf("PROPPATCH %s within the limits: %d %v", u, code, got)
		}
		_, _, before := ts.do("PROPFIND", u, map[string]string{"Depth": "0"}, get)

		// Count: a third fits, a fourth does not.
		code, _, body = ts.do("PROPPATCH", u, nil, setProps("c", "3", "d", "4"))
		if got := propstats(t, body); code != 207 || got["c"] != 424 || got["d"] != 507 {
			t.Errorf("PROPPATCH %s past max_props: %d %v, want c 424, d 507\n%s", u, code, got, body)
		}
		// Bytes: one value over the total.
		big := strings.Repeat("v", 100)
		code, _, body = ts.do("PROPPATCH", u, nil, setProps("a", "short", "e", big))
		if got := propstats(t, body); code != 207 || got["a"] != 424 || got["e"] != 507 {
			t.Errorf("PROPPATCH %s past max_props_bytes: %d %v, want a 424, e 507\n%s", u, code, got, body)
		}
		if _, _, after := ts.do("PROPFIND", u, map[string]string{"Depth": "0"}, get); after != before {
			t.Errorf("a refused PROPPATCH changed %s:\nbefore %s\nafter  %s", u, before, after)
		}
		// Removing one and adding one in the same request fits.
		patch := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x">` +
			`<D:remove><D:prop><x:a/></D:prop></D:remove><D:set><D:prop><x:c>3</x:c><x:d>4</x:d></D:prop></D:set></D:propertyupdate>`
		code, _, body = ts.do("PROPPATCH", u, nil, patch)
		if got := propstats(t, body); code != 207 || got["c"] != 200 || got["d"] != 200 {
			t.Errorf("PROPPATCH %s remove a, set c and d: %d %v", u, code, got)
		}
	}
}

// Properties stored before the limits (here: straight into the store) are
// left out of PROPFIND rather than held in memory for every listing, and a
// PROPPATCH can still remove them.
func TestOversizedStoredPropsNotServed(t *testing.T) {
	ts := newTestServer(t, Options{MaxProps: 4, MaxPropsBytes: 1 << 10})
	ts.put("c/big", "x", store.Info{})
	ts.put("c/small", "x", store.Info{})
	huge := `[{"ns":"urn:x","name":"huge","xml":"` + strings.Repeat("h", 1<<20) + `"}]`
	if _, err := ts.st.Update(context.Background(), "c/big", func(o *store.Object) bool { o.Props = []byte(huge); return true }); err != nil {
		t.Fatal(err)
	}
	ts.do("PROPPATCH", "/dav/c/small", nil, setProps("p", "kept"))
	for _, d := range []string{"0", "1"} {
		u := "/dav/c/"
		if d == "0" {
			u = "/dav/c/big"
		}
		code, _, body := ts.do("PROPFIND", u, map[string]string{"Depth": d}, "")
		if code != 207 || strings.Contains(body, "hhhh") || !strings.Contains(body, "/dav/c/big") {
			t.Errorf("PROPFIND %s Depth %s: %d, %d bytes; want 207 listing big without its properties", u, d, code, len(body))
		}
		if d == "1" && !strings.Contains(body, `<p xmlns="urn:x">kept</p>`) {
			t.Errorf("PROPFIND Depth 1 lost small's property:\n%s", body)
		}
	}
	remove := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><huge xmlns="urn:x"/></D:prop></D:remove></D:propertyupdate>`
	if code, _, body := ts.do("PROPPATCH", "/dav/c/big", nil, remove); code != 207 || propstats(t, body)["huge"] != 200 {
		t.Fatalf("PROPPATCH removing the oversized property: %d %s", code, body)
	}
	if o, _ := ts.st.Stat(context.Background(), "c/big"); len(o.Props) > 2 {
		t.Fatalf("props after the remove: %s", o.Props)
	}
}

// A listing keeps no entry's large properties or metadata: it reads them
// again one entry at a time as it writes the answer.
func TestListingLeavesOutLargeValues(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("MKCOL", "/dav/c/", nil, "")
	ts.do("MKCOL", "/dav/c/sub/", nil, "")
	ts.do("PUT", "/dav/c/f", nil, "x")
	big := strings.Repeat("b", 20<<10)
	for _, u := range []string{"/dav/c/f", "/dav/c/sub/"} {
		if code, _, body := ts.do("PROPPATCH", u, nil, setProps("big", big)); code != 207 || propstats(t, body)["big"] != 200 {
			t.Fatalf("PROPPATCH %s: %d %s", u, code, body)
		}
	}
	_, _, body := ts.do("PROPFIND", "/dav/c/", map[string]string{"Depth": "1"}, "")
	if n := strings.Count(body, `<big xmlns="urn:x">`+big+`</big>`); n != 2 {
		t.Fatalf("PROPFIND Depth 1 shows the 20 KiB property %d times, want 2", n)
	}
	es, err := ts.h.lists.list(context.Background(), ts.st, "c", true)
	if err != nil || len(es) != 2 {
		t.Fatalf("cached listing: %v, %d entries", err, len(es))
	}
	for _, e := range es {
		if len(e.Object.Props)+len(e.Dir.Props) > maxListedBytes || !e.reload {
			t.Errorf("listing keeps %d bytes of properties of %s (reload %v)", len(e.Object.Props)+len(e.Dir.Props), e.Key, e.reload)
		}
	}
}

// nestedPropfind is a PROPFIND of n nested prefixed elements: 95 000 of them
// fit in 1 MB and cost 8.6 CPU-seconds when each prefix lookup walked the
// stack of open elements.
func nestedPropfind(n int) string {
	var b strings.Builder
	b.WriteString(`<D:propfind xmlns:D="DAV:" xmlns:a="urn:a"><D:prop>`)
	b.WriteString(strings.Repeat("<a:x>", n))
	b.WriteString(strings.Repeat("</a:x>", n))
	b.WriteString(`</D:prop></D:propfind>`)
	return b.String()
}

func TestXMLDepthLimit(t *testing.T) {
	ts := newTestServer(t, Options{})
	deep := nestedPropfind(95000)
	if len(deep) > DefaultMaxXMLBody {
		t.Fatalf("the body is %d bytes, over the body limit", len(deep))
	}
	code, _, msg := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "0"}, deep)
	if code != http.StatusBadRequest || !strings.Contains(msg, "nested deeper than 32 elements") {
		t.Fatalf("PROPFIND of 95 000 nested elements: %d %q, want 400 naming the depth limit", code, msg)
	}
	for _, m := range []string{"PROPPATCH", "LOCK"} {
		if code, _, _ := ts.do(m, "/dav/", nil, deep); code != http.StatusBadRequest {
			t.Errorf("%s of 95 000 nested elements: %d, want 400", m, code)
		}
	}
	// 30 levels inside the 2 of propfind/prop are fine.
	if code, _, body := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "0"}, nestedPropfind(30)); code != 207 {
		t.Fatalf("PROPFIND nested 32 deep: %d %s", code, body)
	}
	// Without the depth bound the check is linear: it finishes (in
	// milliseconds; quadratic, it took seconds).
	if err := checkXML([]byte(deep), 1<<30); err != nil {
		t.Fatalf("checkXML of the deep body without a depth limit: %v", err)
	}
	if err := checkXML([]byte(`<a:x xmlns:a="u"><b:y/></a:x>`), 10); err == nil {
		t.Fatal("undeclared prefix accepted")
	}
	if err := checkXML([]byte(`<r><a:x xmlns:a="u"/><a:x/></r>`), 10); err == nil {
		t.Fatal("a prefix accepted after the element that declared it ended")
	}
	if err := checkXML([]byte(`<a:r xmlns:a="u"><a:x xmlns:a=""><a:y/></a:x></a:r>`), 10); err == nil {
		t.Fatal("a prefix accepted where it was undeclared")
	}
	if err := checkXML([]byte(`<a:r xmlns:a="u"><a:x xmlns:a="v"/><a:y/></a:r>`), 10); err != nil {
		t.Fatalf("a prefix redeclared inside and used after: %v", err)
	}
	// Names are written back without their prefix: "A:0" would come back
	// as <0>, and every answer naming that property would be malformed.
	for _, bad := range []string{
		`<D:propfind xmlns:D="DAV:" xmlns:A="u"><D:prop><A:0/></D:prop></D:propfind>`,
		`<a:r xmlns:a="u"><a:x a:1="v"/></a:r>`,
		`<a:r xmlns:a="u"><a:-x/></a:r>`,
	} {
		if err := checkXML([]byte(bad), 10); err == nil {
			t.Errorf("%s: a name that is no XML name on its own accepted", bad)
		}
	}
	if err := checkXML([]byte(`<a:r xmlns:a="u"><a:é-1.x a:_b="v"/></a:r>`), 10); err != nil {
		t.Errorf("good names refused: %v", err)
	}
}

func TestXMLBodyLimit(t *testing.T) {
	ts := newTestServer(t, Options{MaxXMLBody: 200})
	small := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`
	if code, _, _ := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "0"}, small); code != 207 {
		t.Fatalf("PROPFIND with a small body: %d", code)
	}
	large := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/>` + strings.Repeat(" ", 200) + `</D:propfind>`
	for _, m := range []string{"PROPFIND", "PROPPATCH", "LOCK"} {
		if code, _, _ := ts.do(m, "/dav/", map[string]string{"Depth": "0"}, large); code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with a body over max_xml_body: %d, want 413", m, code)
		}
	}
}

// A PROPFIND may not name more properties than any resource has.
func TestPropfindNameLimit(t *testing.T) {
	ts := newTestServer(t, Options{MaxProps: 4})
	names := func(n int) string {
		var b strings.Builder
		b.WriteString(`<D:propfind xmlns:D="DAV:"><D:prop>`)
		for i := range n {
			b.WriteString("<x" + itoa(i) + ` xmlns="urn:x"/>`)
			b.WriteString(`<x0 xmlns="urn:x"/>`) // repeats count once
		}
		b.WriteString(`</D:prop></D:propfind>`)
		return b.String()
	}
	if code, _, _ := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "0"}, names(68)); code != 207 {
		t.Fatalf("PROPFIND of max_props+64 names: %d, want 207", code)
	}
	if code, _, _ := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "0"}, names(69)); code != 400 {
		t.Fatalf("PROPFIND of max_props+65 names: %d, want 400", code)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// What Apache's mod_dav sends, and some clients take as the only way.
func TestApacheCompatibleHeaders(t *testing.T) {
	ts := newTestServer(t, Options{})
	const xmlType = `text/xml; charset="utf-8"`
	_, hdr, _ := ts.do("OPTIONS", "/dav/", nil, "")
	if hdr.Get("DAV") != "1,2" {
		t.Errorf("DAV: %q, want %q (hdav splits on \",\" without trimming)", hdr.Get("DAV"), "1,2")
	}
	if a := hdr.Get("Allow"); strings.Contains(a, " ") || !strings.Contains(a, ",PROPFIND,") {
		t.Errorf("Allow: %q, want comma-separated without spaces", a)
	}
	ts.do("PUT", "/dav/f", nil, "x")
	check := func(what string, code, want int, hdr http.Header) {
		t.Helper()
		if code != want || hdr.Get("Content-Type") != xmlType {
			t.Errorf("%s: %d Content-Type %q, want %d %q", what, code, hdr.Get("Content-Type"), want, xmlType)
		}
	}
	code, hdr, _ := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "1"}, "")
	check("PROPFIND", code, 207, hdr)
	code, hdr, _ = ts.do("PROPPATCH", "/dav/f", nil, setProps("a", "1"))
	check("PROPPATCH", code, 207, hdr)
	code, hdr, _ = ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "infinity"}, "")
	check("PROPFIND Depth: infinity", code, 403, hdr)
	code, hdr, _ = ts.do("LOCK", "/dav/f", nil, lockBody)
	check("LOCK", code, 200, hdr)
	code, hdr, _ = ts.do("PUT", "/dav/f", nil, "y")
	check("PUT on a locked file", code, 423, hdr)
}

// An empty propertyupdate, or a set of an empty prop, changes nothing and
// is answered 207, as Apache answers it; a set without a prop is still 400.
func TestEmptyProppatch(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("PUT", "/dav/f", nil, "x")
	for _, body := range []string{
		`<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"/>`,
		`<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop/></D:set></D:propertyupdate>`,
	} {
		code, _, resp := ts.do("PROPPATCH", "/dav/f", nil, body)
		if code != 207 || !strings.Contains(resp, "<D:href>/dav/f</D:href><D:propstat>") || !strings.Contains(resp, "200 OK") {
			t.Errorf("PROPPATCH %s: %d\n%s", body, code, resp)
		}
	}
	body := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set/></D:propertyupdate>`
	if code, _, _ := ts.do("PROPPATCH", "/dav/f", nil, body); code != 400 {
		t.Errorf("PROPPATCH with a set without prop: %d, want 400", code)
	}
	// The same for PROPFIND of an empty prop: a response with a propstat.
	code, _, resp := ts.do("PROPFIND", "/dav/f", map[string]string{"Depth": "0"},
		`<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop/></D:propfind>`)
	if code != 207 || !strings.Contains(resp, "<D:propstat>") {
		t.Errorf("PROPFIND of an empty prop: %d\n%s", code, resp)
	}
}

// RFC 4331 quota properties are on collections only: davix takes a file's
// quota-used-bytes for its size.
func TestQuotaOnCollectionsOnly(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("MKCOL", "/dav/c/", nil, "")
	ts.do("PUT", "/dav/c/f", nil, "12345")
	ask := `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/><D:quota-available-bytes/><D:getcontentlength/></D:prop></D:propfind>`
	_, _, body := ts.do("PROPFIND", "/dav/c/f", map[string]string{"Depth": "0"}, ask)
	if got := propstats(t, body); got["quota-used-bytes"] != 404 || got["quota-available-bytes"] != 404 || got["getcontentlength"] != 200 {
		t.Errorf("quota asked of a file: %v, want 404 for both quotas\n%s", got, body)
	}
	_, _, body = ts.do("PROPFIND", "/dav/c/", map[string]string{"Depth": "0"}, ask)
	if got := propstats(t, body); got["quota-used-bytes"] != 200 || got["quota-available-bytes"] != 200 {
		t.Errorf("quota asked of a collection: %v, want 200\n%s", got, body)
	}
	for _, req := range []string{"", `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>`} {
		_, _, body = ts.do("PROPFIND", "/dav/c/f", map[string]string{"Depth": "0"}, req)
		if strings.Contains(body, "quota") {
			t.Errorf("PROPFIND %q of a file names a quota:\n%s", req, body)
		}
	}
}

// The HTML index of a folder: hrefs without character references (lftp
// does not decode &#39;), no control characters in names, and nosniff.
func TestHTMLListing(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do("MKCOL", "/dav/c/", nil, "")
	for _, name := range []string{"it's.mp3", `a"b&c<d>.txt`, "bell\x07\x7f\u0085.txt"} {
		if code, _, _ := ts.do("PUT", "/dav/c/"+escapePath(name), nil, "x"); code != 201 {
			t.Fatalf("PUT %q: %d", name, code)
		}
	}
	code, hdr, body := ts.do("GET", "/dav/c/", nil, "")
	if code != 200 || hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET /dav/c/: %d, X-Content-Type-Options %q", code, hdr.Get("X-Content-Type-Options"))
	}
	hrefs := regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(body, -1)
	want := map[string]bool{"/dav/c/it%27s.mp3": true, "/dav/c/a%22b%26c%3Cd%3E.txt": true, "/dav/c/bell%07%7F%C2%85.txt": true}
	for _, h := range hrefs {
		if strings.Contains(h[1], "&") {
			t.Errorf("href %q holds a character reference", h[1])
		}
		delete(want, h[1])
	}
	if len(want) > 0 {
		t.Errorf("hrefs %v lack %v\n%s", hrefs, want, body)
	}
	if strings.ContainsAny(body, "\x07\x7f\u0085") || !strings.Contains(body, ">bell\uFFFD\uFFFD\uFFFD.txt<") {
		t.Errorf("control characters shown in the listing:\n%q", body)
	}
	// Each href fetches its file.
	if code, _, b := ts.do("GET", "/dav/c/it%27s.mp3", nil, ""); code != 200 || b != "x" {
		t.Errorf("GET of the listed href: %d %q", code, b)
	}
	if _, hdr, _ := ts.do("GET", "/dav/c/it%27s.mp3", nil, ""); hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET of a file without nosniff")
	}
}

// hide_junk = "hide" leaves junk out of listings and discards writes of it
// (config.example.toml), "refuse" refuses them, "off" keeps them.
func TestJunkModes(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t, Options{HideJunk: JunkHide})
	ts.do("PUT", "/dav/keep.mp3", nil, "k")
	if code, _, _ := ts.do("PUT", "/dav/.DS_Store", nil, "junk"); code != 201 {
		t.Errorf("hide: PUT .DS_Store: %d, want 201", code)
	}
	if code, _, _ := ts.do("COPY", "/dav/keep.mp3", map[string]string{"Destination": "/dav/._keep.mp3"}, ""); code != 201 {
		t.Errorf("hide: COPY to ._keep.mp3: %d, want 201", code)
	}
	if code, _, _ := ts.do("LOCK", "/dav/Thumbs.db", nil, lockBody); code != 201 {
		t.Errorf("hide: LOCK of a new Thumbs.db: %d, want 201", code)
	}
	if code, _, _ := ts.do("MKCOL", "/dav/desktop.ini", nil, ""); code != 201 {
		t.Errorf("hide: MKCOL desktop.ini: %d, want 201", code)
	}
	for _, k := range []string{".DS_Store", "._keep.mp3", "Thumbs.db", "desktop.ini"} {
		if _, err := ts.st.Stat(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("hide: %s was stored (%v)", k, err)
		}
		if _, err := ts.st.StatDir(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("hide: folder %s was made (%v)", k, err)
		}
		if code, _, _ := ts.do("GET", "/dav/"+k, nil, ""); code != 404 {
			t.Errorf("hide: GET %s: %d, want 404", k, code)
		}
	}
	// Junk stored some other way (by Kazoo, or before) stays hidden.
	ts.put("._old", "x", store.Info{})
	_, _, body := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "1"}, "")
	if strings.Contains(body, "._old") || !strings.Contains(body, "keep.mp3") {
		t.Errorf("hide: listing:\n%s", body)
	}
	if _, _, body := ts.do("GET", "/dav/", nil, ""); strings.Contains(body, "._old") {
		t.Errorf("hide: HTML listing shows junk:\n%s", body)
	}

	ts = newTestServer(t, Options{HideJunk: JunkRefuse})
	if code, _, _ := ts.do("PUT", "/dav/.DS_Store", nil, "junk"); code != 403 {
		t.Errorf("refuse: PUT .DS_Store: %d, want 403", code)
	}

	ts = newTestServer(t, Options{HideJunk: JunkOff})
	if code, _, _ := ts.do("PUT", "/dav/.DS_Store", nil, "junk"); code != 201 {
		t.Errorf("off: PUT .DS_Store: %d, want 201", code)
	}
	if _, _, body := ts.do("GET", "/dav/.DS_Store", nil, ""); body != "junk" {
		t.Errorf("off: GET .DS_Store: %q", body)
	}
	if _, _, body := ts.do("PROPFIND", "/dav/", map[string]string{"Depth": "1"}, ""); !strings.Contains(body, ".DS_Store") {
		t.Errorf("off: .DS_Store not listed:\n%s", body)
	}
}

// A lock's owner is held to max_props_bytes, and the shared locks on one
// resource to maxLocks: each is stored and shown in every lockdiscovery.
func TestLockLimits(t *testing.T) {
	ts := newTestServer(t, Options{MaxPropsBytes: 100})
	ts.do("PUT", "/dav/f", nil, "x")
	owner := strings.Replace(lockBody, "<D:href>me</D:href>", "<D:href>"+strings.Repeat("o", 100)+"</D:href>", 1)
	if code, _, _ := ts.do("LOCK", "/dav/f", nil, owner); code != http.StatusInsufficientStorage {
		t.Errorf("LOCK with a 100-byte owner, max_props_bytes = 100: %d, want 507", code)
	}
	shared := strings.Replace(lockBody, "<D:exclusive/>", "<D:shared/>", 1)
	for i := range maxLocks {
		if code, _, body := ts.do("LOCK", "/dav/f", nil, shared); code != 200 {
			t.Fatalf("shared LOCK %d: %d %s", i+1, code, body)
		}
	}
	if code, _, _ := ts.do("LOCK", "/dav/f", nil, shared); code != http.StatusInsufficientStorage {
		t.Errorf("shared LOCK %d: %d, want 507", maxLocks+1, code)
	}
}

// The @by-date view, kept in memory for the whole tree, holds no dead
// properties of its files.
func TestViewKeepsNoDeadProps(t *testing.T) {
	ts := newTestServer(t, Options{ByDate: true})
	const acct = "4e3005310add6229778caf6babfe7cfb"
	ts.put(acct+"/d1/vm.mp3", "one", store.Info{ContentType: "audio/mpeg", Meta: []byte(`{"fetch_query":{"mailbox":"2000"}}`), DocID: "d1"})
	if code, _, body := ts.do("PROPPATCH", "/dav/"+acct+"/d1/vm.mp3", nil, setProps("note", strings.Repeat("n", 1000))); code != 207 || propstats(t, body)["note"] != 200 {
		t.Fatalf("PROPPATCH: %d %s", code, body)
	}
	_, _, body := ts.do("PROPFIND", "/dav/@by-date/"+acct+"/", map[string]string{"Depth": "1"}, "")
	code, _, body := ts.do("PROPFIND", "/dav/@by-date/"+acct+"/"+firstDay(body), map[string]string{"Depth": "1"}, "")
	if code != 207 || strings.Contains(body, "nnnn") || !strings.Contains(body, "2000") {
		t.Fatalf("PROPFIND of the view's day: %d\n%s", code, body)
	}
}

// firstDay returns the first day folder named in a PROPFIND of an account in the view.
func firstDay(body string) string {
	m := regexp.MustCompile(`/(\d{4}-\d\d-\d\d)/</D:href>`).FindStringSubmatch(body)
	if m == nil {
		return "none/"
	}
	return m[1] + "/"
}

// Trim drops listings the index has moved past at once, not at the next
// PROPFIND, and listings nobody asked for in listIdle; it keeps the others.
func TestTrimDropsStaleAndIdleListings(t *testing.T) {
	ts := newTestServer(t, Options{})
	ctx := context.Background()
	ts.do("MKCOL", "/dav/c/", nil, "")
	ts.do("PUT", "/dav/c/f", nil, "x")
	cached := func() int {
		ts.h.lists.mu.Lock()
		defer ts.h.lists.mu.Unlock()
		return len(ts.h.lists.lists)
	}
	list := func() {
		t.Helper()
		if code, _, _ := ts.do("PROPFIND", "/dav/c/", map[string]string{"Depth": "1"}, ""); code != 207 {
			t.Fatalf("PROPFIND: %d", code)
		}
	}

	list()
	ts.h.lists.trim(ctx, time.Now())
	if cached() == 0 {
		t.Fatal("trim dropped a fresh listing asked for just now")
	}
	ts.h.lists.trim(ctx, time.Now().Add(listIdle))
	if n := cached(); n != 0 {
		t.Errorf("trim kept %d listings nobody asked for in %v", n, listIdle)
	}

	list()
	ts.do("PUT", "/dav/c/g", nil, "y") // the index moves on; nothing lists again
	ts.h.Trim(ctx)
	if n := cached(); n != 0 {
		t.Errorf("trim kept %d listings older than the index", n)
	}
	if _, _, body := ts.do("PROPFIND", "/dav/c/", map[string]string{"Depth": "1"}, ""); !strings.Contains(body, "/dav/c/g") {
		t.Errorf("the listing after a trim misses the new object:\n%s", body)
	}
}
