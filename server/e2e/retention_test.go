package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestRetentionSweeper: a running server's sweeper deletes the objects a
// [[retention]] rule says have expired, keeps those under a [[hold]] and
// those no rule covers, and each delete reaches a webhook as an
// attachment.deleted event with "reason": "retention".
func TestRetentionSweeper(t *testing.T) {
	t.Run("local", func(t *testing.T) { testRetentionSweeper(t, "") })
	// With the bytes in a storage plugin: a retention delete removes them there too.
	t.Run("azblob", func(t *testing.T) { testRetentionSweeper(t, "azblob") })
}

func testRetentionSweeper(t *testing.T, backend string) {
	r := newReceiver(t, 0)
	var mu sync.Mutex
	reasons := map[string]string{} // key → reason of its attachment.deleted
	inner := r.srv.Config.Handler
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
			Object struct {
				Key string `json:"key"`
			} `json:"object"`
		}
		if json.Unmarshal(body, &ev) == nil && ev.Type == "attachment.deleted" {
			mu.Lock()
			reasons[ev.Object.Key] = ev.Reason
			mu.Unlock()
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		inner.ServeHTTP(w, req)
	})
	cfg := webhookConfig(t, r, "")
	if backend != "" {
		cfg = webhookOnBackend(t, r, backendTOML(t, backend, "through", uniqueName("ret")))
	}
	cfg.Extra += `
[[retention]]
prefix = "/ret/"
max_age = "2s"

[[hold]]
prefix = "/ret/held"
note = "e2e"

[retention_sweep]
rate = 50
interval = "300ms"
`
	srv := startServer(t, serverOptions{Config: cfg})
	keys := []string{"/ret/a.mp3", "/ret/b.mp3", "/ret/held/c.mp3", "/keep/d.mp3", "/ret/case/e.mp3"}
	for _, k := range keys {
		if code, err := put(t, srv, k, []byte("voice "+k)); err != nil || code/100 != 2 {
			t.Fatalf("PUT %s: %d %v", k, code, err)
		}
	}
	// A legal hold set over WebDAV on a folder, shown by PROPFIND.
	hold := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:A="https://github.com/attachd/attachd/ns">` +
		`<D:set><D:prop><A:legal-hold>case 42</A:legal-hold></D:prop></D:set></D:propertyupdate>`
	if code, _, b := do(t, "PROPPATCH", "http://"+srv.Addr+"/dav/ret/case/", nil, []byte(hold)); code != 207 || !bytes.Contains(b, []byte("200 OK")) {
		t.Fatalf("PROPPATCH legal-hold: %d %s", code, b)
	}
	if code, _, b := do(t, "PROPFIND", "http://"+srv.Addr+"/dav/ret/case/", map[string]string{"Depth": "0"}, nil); code != 207 || !bytes.Contains(b, []byte("case 42")) {
		t.Fatalf("PROPFIND does not show the hold: %d %s", code, b)
	}
	waitFor(t, 30*time.Second, "retention deletes delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reasons["ret/a.mp3"] != "" && reasons["ret/b.mp3"] != ""
	})
	mu.Lock()
	for _, k := range []string{"ret/a.mp3", "ret/b.mp3"} {
		if reasons[k] != "retention" {
			t.Errorf("%s: reason %q, want \"retention\"", k, reasons[k])
		}
	}
	mu.Unlock()
	for _, tc := range []struct {
		key  string
		want int
	}{{"/ret/a.mp3", 404}, {"/ret/b.mp3", 404}, {"/ret/held/c.mp3", 200}, {"/keep/d.mp3", 200}, {"/ret/case/e.mp3", 200}} {
		resp, err := http.Get("http://" + srv.Addr + tc.key)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.key, resp.StatusCode, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) != 2 {
		t.Errorf("deleted events: %v", fmt.Sprint(reasons))
	}
}
