package kazoo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/auth"
	"github.com/attachd/attachd/server/store"
)

func TestUndouble(t *testing.T) {
	for in, want := range map[string]string{
		"/A/D/N?path=/A/D/N": "/A/D/N",
		"A/D/NA/D/N":         "A/D/N",
		"abcabc":             "abc",
		"abc":                "",
		"":                   "",
		"aaaa":               "aa",
	} {
		if got := undouble(in); got != want {
			t.Errorf("undouble(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequestKeys(t *testing.T) {
	h := &Handler{}
	tests := []struct {
		path, query, key, undoubled string
	}{
		{"/p/A/D/N.mp3", "", "p/A/D/N.mp3", ""},
		{"/p/A/D/N.mp3", "from=pqc_cb_storage", "p/A/D/N.mp3", ""},
		{"/storage/", "path=/A/D/N", "storage/A/D/N", ""},
		{"/storage/", "path=/A/D/N?path=/A/D/N&media_id=D", "storage/A/D/N?path=/A/D/N", "storage/A/D/N"},
		{"/index.fu", "key=abc123&recording=A/D/NA/D/N", "index.fu/A/D/NA/D/N", "index.fu/A/D/N"},
	}
	for _, tt := range tests {
		key, und, err := h.requestKeys(tt.path, ParseQuery(tt.query))
		if err != nil || key != tt.key || und != tt.undoubled {
			t.Errorf("requestKeys(%q, %q) = %q, %q, %v; want %q, %q", tt.path, tt.query, key, und, err, tt.key, tt.undoubled)
		}
	}
	if _, _, err := h.requestKeys("/p", ParseQuery("path=/../../etc")); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("a key parameter with .. was accepted: %v", err)
	}
}

// TestResolve stores objects through the handler and fetches them with
// every URL shape Kazoo uses (docs/kazoo.md §4).
func TestResolve(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := &Handler{Store: st, Base64: Base64Auto, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	do := func(method, target string, body []byte) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, bytes.NewReader(body))
		r.Header.Set("Content-Type", "audio/mpeg")
		r = r.WithContext(auth.WithUser(r.Context(), &auth.User{Write: true}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	const d = "202004-03b64407c4f1f83340a9ef39fc0d02d8"
	stores := map[string]string{
		"/p/A/" + d + "/N.mp3":                  "default fields",
		"/storage/?path=/A/" + d + "/N.mp3":     "path in the query",
		"/index.fu?key=abc&recording=A/E/N.mp3": "recording in the query",
		"/p/A/O/" + d + "/R.mp3":                "recording with owner",
	}
	for target, body := range stores {
		if w := do("PUT", target, []byte(body)); w.Code != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", target, w.Code, w.Body)
		}
	}
	fetches := map[string]string{
		"/p/A/" + d + "/N.mp3": "default fields",
		"/p/A/" + d + "/N.mp3/A/" + d + "/N.mp3?media_id=" + d + "&x[y]=1":     "default fields",
		"/storage/?path=/A/" + d + "/N.mp3?path=/A/" + d + "/N.mp3&media_id=x": "path in the query",
		"/index.fu?key=abc&recording=A/E/N.mp3A/E/N.mp3&media_id=y":            "recording in the query",
		"/p/A/O/" + d + "/R.mp3/A/O/" + d + "/R.mp3?tags[]=a&&":                "recording with owner",
		"/elsewhere/?media_id=" + d:                                            "",
	}
	for target, want := range fetches {
		w := do("GET", target, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", target, w.Code)
			continue
		}
		if want != "" && w.Body.String() != want {
			t.Errorf("GET %s = %q, want %q", target, w.Body, want)
		}
		if w.Header().Get("Content-Encoding") != "" || !strings.HasPrefix(w.Header().Get("ETag"), `"`) {
			t.Errorf("GET %s headers: %v", target, w.Header())
		}
	}
	if w := do("GET", "/p/A/nothing/here.mp3?media_id=nope", nil); w.Code != http.StatusNotFound {
		t.Errorf("unknown object: %d", w.Code)
	}
	if w := do("GET", "/p/A/"+d+"/N.mp3x", nil); w.Code != http.StatusNotFound {
		t.Errorf("prefix off a segment boundary: %d", w.Code)
	}
}

func TestReadOnlyUserCannotStore(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := &Handler{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r := httptest.NewRequest("PUT", "/p/x.mp3", strings.NewReader("x"))
	r = r.WithContext(auth.WithUser(r.Context(), &auth.User{Name: "ro"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Fatalf("read-only PUT: %d", w.Code)
	}
}

// TestFetchMetadataIsBounded fetches one small object 100 times, each time
// with new query keys: what the object's record keeps of them stays under
// the limit, and Kazoo's own keys, sent first, are kept.
func TestFetchMetadataIsBounded(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const limit = 4096
	h := &Handler{Store: st, MaxFetchMeta: limit, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	do := func(method, target string, body []byte) int {
		r := httptest.NewRequest(method, target, bytes.NewReader(body))
		r = r.WithContext(auth.WithUser(r.Context(), &auth.User{Write: true}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := do("PUT", "/p/small.mp3", []byte("sixby")); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	if code := do("GET", "/p/small.mp3?media_id=m1&from=kazoo", nil); code != http.StatusOK {
		t.Fatalf("GET: %d", code)
	}
	for i := range 100 {
		q := ""
		for j := range 10 {
			q += fmt.Sprintf("&k%03d_%d=%s", i, j, strings.Repeat("v", 50))
		}
		if code := do("GET", "/p/small.mp3?"+q[1:], nil); code != http.StatusOK {
			t.Fatalf("GET %d: %d", i, code)
		}
	}
	o, err := st.Stat(t.Context(), "p/small.mp3")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		FetchQuery map[string]any `json:"fetch_query"`
	}
	if err := json.Unmarshal(o.Meta, &meta); err != nil {
		t.Fatal(err)
	}
	fq, _ := json.Marshal(meta.FetchQuery)
	if len(fq) > limit {
		t.Fatalf("fetch metadata grew to %d bytes, limit %d", len(fq), limit)
	}
	if meta.FetchQuery["media_id"] != "m1" || o.MediaID != "m1" {
		t.Fatalf("Kazoo's own keys lost: %v, media id %q", meta.FetchQuery["media_id"], o.MediaID)
	}
	if len(o.Meta) > 2*limit {
		t.Fatalf("record is %d bytes", len(o.Meta))
	}
}
