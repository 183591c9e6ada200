package dav

import (
	"net/http"
	"testing"

	"github.com/attachd/attachd/server/store"
)

// TestErrorAnswers pins the bytes of the error answers that are more than
// a status and a line of text: the handlers return their errors and fail
// writes all of them, so these must come out of fail unchanged.
func TestErrorAnswers(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.put("f.txt", "x", store.Info{ContentType: "text/plain"})
	lockBody := `<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>` +
		`<D:locktype><D:write/></D:locktype></D:lockinfo>`
	if code, _, body := ts.do("LOCK", "/dav/f.txt", nil, lockBody); code != http.StatusOK {
		t.Fatalf("LOCK: %d %s", code, body)
	}
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		code               int
		ctype, body        string
	}{
		{"unknown lock token", "UNLOCK", "/dav/f.txt", map[string]string{"Lock-Token": "<opaquelocktoken:nope>"},
			http.StatusConflict, "text/plain; charset=utf-8", "no such lock on this resource\n"},
		{"infinite PROPFIND", "PROPFIND", "/dav/", map[string]string{"Depth": "infinity"},
			http.StatusForbidden, xmlContentType,
			xmlHeader + `<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>`},
		{"locked", "DELETE", "/dav/f.txt", nil,
			http.StatusLocked, xmlContentType,
			xmlHeader + `<D:error xmlns:D="DAV:"><D:lock-token-submitted><D:href>/dav/f.txt</D:href></D:lock-token-submitted></D:error>`},
		{"unknown method", "PATCH", "/dav/f.txt", nil,
			http.StatusMethodNotAllowed, "text/plain; charset=utf-8", "method not allowed\n"},
		{"no Destination", "COPY", "/dav/f.txt", nil,
			http.StatusBadRequest, "text/plain; charset=utf-8", "bad request: no Destination header\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, hdr, body := ts.do(tt.method, tt.path, tt.hdr, "")
			if code != tt.code || hdr.Get("Content-Type") != tt.ctype || body != tt.body {
				t.Errorf("%s %s: %d %q %q, want %d %q %q", tt.method, tt.path,
					code, hdr.Get("Content-Type"), body, tt.code, tt.ctype, tt.body)
			}
		})
	}
}
