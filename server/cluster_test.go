package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/store"
)

// TestPeersReadAnotherNodesSpool stores an object on node A and reads its
// bytes as node B does before the replicator has moved them: through A's
// peer route, found through the nodes registered in the shared backend.
func TestPeersReadAnotherNodesSpool(t *testing.T) {
	const secret = "a-cluster-secret-of-some-length"
	a, urlA := start(t, func(c *config.Config) { c.Cluster.Secret = secret })
	body := strings.Repeat("voicemail ", 1000)
	req, _ := http.NewRequest("PUT", urlA+"/p/acct/vm.mp3", strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	o, err := a.Store().Stat(context.Background(), "p/acct/vm.mp3")
	if err != nil {
		t.Fatal(err)
	}
	shared, err := store.NewDirBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := registerNode(ctx, shared, urlA); err != nil {
		t.Fatal(err)
	}
	name := "blobs/" + o.Blob

	p := newPeers(shared, "http://node-b.invalid", secret)
	if info, err := p.Stat(ctx, name); err != nil || info.Size != int64(len(body)) {
		t.Fatalf("Stat: %+v, %v", info, err)
	}
	rc, err := p.Open(ctx, name, 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != body[10:30] {
		t.Fatalf("ranged read: %q", got)
	}
	if _, err := p.Stat(ctx, "blobs/"+strings.Repeat("ab", 16)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a blob no node has: %v, want ErrNotFound", err)
	}

	// A wrong secret is refused: the blob may be there, so not a 404.
	wrong := newPeers(shared, "http://node-b.invalid", "not-the-secret-at-all")
	if _, err := wrong.Stat(ctx, name); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("wrong secret: %v, want ErrUnavailable", err)
	}
	// A node that cannot be reached may hold a missing blob: 503, not 404.
	if err := registerNode(ctx, shared, "http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	p = newPeers(shared, "http://node-b.invalid", secret)
	if _, err := p.Stat(ctx, "blobs/"+strings.Repeat("cd", 16)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a node down: %v, want ErrUnavailable", err)
	}
	// The route serves nothing without the secret.
	resp, err = http.Get(urlA + peerPrefix + o.Blob)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("peer route without the secret: %d", resp.StatusCode)
	}
}
