package dav

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/auth"
	"github.com/attachd/attachd/server/store"
)

// testServer is a Handler over a fresh store, behind a stand-in for the
// server's authentication: the user comes from the X-Test-User header.
type testServer struct {
	t     testing.TB
	st    *store.Store
	h     *Handler
	srv   *httptest.Server
	users map[string]*auth.User
}

func newTestServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	return newTestServerIn(t, t.TempDir(), opts)
}

// newTestServerIn is newTestServer over the data directory dir; close the
// store (ts.close) before opening dir again.
func newTestServerIn(t testing.TB, dir string, opts Options) *testServer {
	t.Helper()
	st, err := store.Open(dir, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts.Store = st
	if opts.Prefix == "" {
		opts.Prefix = "/dav"
	}
	opts.Log = slog.New(slog.DiscardHandler)
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, st: st, h: h, users: map[string]*auth.User{
		"":   {Write: true},
		"ro": {Name: "ro", Root: "acct1"},
		"rw": {Name: "rw", Root: "acct1", Write: true},
	}}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := r.Header["X-Test-User"]; ok {
			u := ts.users[name[0]]
			if u == nil {
				h.ServeHTTP(w, r) // no user: only OPTIONS gets through
				return
			}
			r = r.WithContext(auth.WithUser(r.Context(), u))
		} else {
			r = r.WithContext(auth.WithUser(r.Context(), ts.users[""]))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

// close stops the server and closes its store.
func (ts *testServer) close() {
	ts.srv.Close()
	ts.h.Close()
	ts.st.Close()
}

// do sends a request and returns the status, headers and body.
func (ts *testServer) do(method, path string, hdr map[string]string, body string) (int, http.Header, string) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.srv.URL+path, strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := ts.srv.Client().Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// put stores an object directly in the store, as Kazoo would.
func (ts *testServer) put(key, body string, info store.Info) store.Object {
	ts.t.Helper()
	if info.Size == 0 {
		info.Size = -1
	}
	o, err := ts.st.Put(context.Background(), key, strings.NewReader(body), info)
	if err != nil {
		ts.t.Fatal(err)
	}
	return o
}
