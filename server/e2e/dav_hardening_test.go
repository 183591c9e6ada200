package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// The [limits] of the configuration reach the WebDAV handler, and its
// answers look like Apache mod_dav's where clients depend on it.
func TestDAVHardeningLimits(t *testing.T) {
	t.Parallel()
	srv := davStart(t, "[limits]\nmax_xml_body = 4096\nmax_xml_depth = 8\nmax_props = 2\nmax_props_bytes = 1000\n")
	code, hdr, _ := davDo(t, "OPTIONS", srv.davURL(""), nil, nil)
	if code != 200 || hdr.Get("DAV") != "1,2" {
		t.Errorf("OPTIONS: %d DAV %q, want 200 %q", code, hdr.Get("DAV"), "1,2")
	}
	if code, _, b := davDo(t, "PUT", srv.davURL("f.txt"), nil, []byte("x")); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, b)
	}

	patch := func(vals ...string) string {
		var b strings.Builder
		b.WriteString(`<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x"><D:set><D:prop>`)
		for i, v := range vals {
			n := string(rune('a' + i))
			b.WriteString("<x:" + n + ">" + v + "</x:" + n + ">")
		}
		b.WriteString("</D:prop></D:set></D:propertyupdate>")
		return b.String()
	}
	code, hdr, body := davDo(t, "PROPPATCH", srv.davURL("f.txt"), nil, []byte(patch("1", "2", "3")))
	if code != 207 || !strings.Contains(string(body), "507 Insufficient Storage") || !strings.Contains(string(body), "424 Failed Dependency") {
		t.Errorf("PROPPATCH of 3 properties with max_props = 2: %d\n%s", code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != `text/xml; charset="utf-8"` {
		t.Errorf("207 Content-Type %q", ct)
	}
	code, _, body = davDo(t, "PROPPATCH", srv.davURL("f.txt"), nil, []byte(patch(strings.Repeat("v", 1001))))
	if code != 207 || !strings.Contains(string(body), "507 Insufficient Storage") {
		t.Errorf("PROPPATCH of 1001 bytes with max_props_bytes = 1000: %d\n%s", code, body)
	}
	code, _, body = davDo(t, "PROPPATCH", srv.davURL("f.txt"), nil, []byte(patch("1", "2")))
	if code != 207 || strings.Contains(string(body), "507") || strings.Contains(string(body), "424") {
		t.Errorf("PROPPATCH within the limits: %d\n%s", code, body)
	}

	deep := `<D:propfind xmlns:D="DAV:" xmlns:a="urn:a"><D:prop>` + strings.Repeat("<a:x>", 7) + strings.Repeat("</a:x>", 7) + `</D:prop></D:propfind>`
	code, _, body = davDo(t, "PROPFIND", srv.davURL(""), map[string]string{"Depth": "0"}, []byte(deep))
	if code != 400 || !strings.Contains(string(body), "deeper than 8") {
		t.Errorf("PROPFIND nested 9 deep with max_xml_depth = 8: %d %s", code, body)
	}
	large := `<D:propfind xmlns:D="DAV:"><D:allprop/>` + strings.Repeat(" ", 4096) + `</D:propfind>`
	if code, _, body := davDo(t, "PROPFIND", srv.davURL(""), map[string]string{"Depth": "0"}, []byte(large)); code != 413 {
		t.Errorf("PROPFIND body over max_xml_body = 4096: %d %s", code, body)
	}
}
