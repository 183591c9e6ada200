package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/server/store"
)

// A cluster (docs/cluster.md) is nodes sharing one index and one backend.
// In spool mode a node answers a store once the bytes are in its own spool;
// until the replicator has moved them to the backend, the other nodes read
// them from it over HTTP, at peerPrefix, authenticated with [cluster] secret.
// Each node registers its advertise_url in the backend, under nodesPrefix,
// so that the others can find it.
const (
	peerPrefix  = "/_attachd/blobs/"
	nodesPrefix = "nodes/"
)

// nodeName is the backend name under which a node registers.
func nodeName(advertise string) string {
	sum := sha256.Sum256([]byte(advertise))
	return nodesPrefix + hex.EncodeToString(sum[:8])
}

// registerNode writes this node's advertise_url into the backend.
func registerNode(ctx context.Context, b store.Backend, advertise string) error {
	w, err := b.Create(ctx, nodeName(advertise), int64(len(advertise)))
	if err != nil {
		return fmt.Errorf("register node: %w", err)
	}
	if _, err := io.WriteString(w, advertise); err != nil {
		w.Abort()
		return fmt.Errorf("register node: %w", err)
	}
	return w.Commit(ctx)
}

// peerBlob serves a blob of this node's spool to another node: GET or HEAD,
// with Range. Anything else, or a wrong secret, is refused.
func (s *Server) peerBlob(w http.ResponseWriter, r *http.Request) {
	want := "Bearer " + s.cfg.Cluster.Secret
	if s.cfg.Cluster.Secret == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
		http.Error(w, "forbidden: not a node of this cluster", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, err := s.store.OpenLocalBlob(strings.TrimPrefix(r.URL.Path, peerPrefix))
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, store.ErrNotFound):
			code = http.StatusNotFound
		case errors.Is(err, store.ErrInvalidKey):
			code = http.StatusBadRequest
		}
		http.Error(w, http.StatusText(code), code)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, f)
}

// peers reads blobs from the spools of the other nodes: a read-only
// blob.Backend for store.Options.Peers.
type peers struct {
	backend store.Backend // where nodes register
	self    string        // this node's advertise_url
	secret  string
	client  *http.Client

	mu    sync.Mutex
	nodes []string
	at    time.Time
}

func newPeers(b store.Backend, self, secret string) *peers {
	return &peers{backend: b, self: self, secret: secret,
		client: &http.Client{Timeout: 0, Transport: &http.Transport{
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   8,
		}}}
}

// others returns the other nodes' advertise URLs, read from the backend at
// most every few seconds.
func (p *peers) others(ctx context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.at) < 5*time.Second {
		return p.nodes, nil
	}
	var nodes []string
	cursor := ""
	for {
		page, next, err := p.backend.List(ctx, nodesPrefix, cursor, 100)
		if err != nil {
			return nil, fmt.Errorf("%w: list cluster nodes: %v", store.ErrUnavailable, err)
		}
		for _, bi := range page {
			rc, err := p.backend.Open(ctx, bi.Name, 0, 1024)
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if u := string(b); u != "" && u != p.self {
				nodes = append(nodes, u)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	p.nodes, p.at = nodes, time.Now()
	return nodes, nil
}

// request asks node for a blob; n < 0 reads to the end.
func (p *peers) request(ctx context.Context, method, node, name string, off, n int64) (*http.Response, error) {
	blobName := strings.TrimPrefix(name, "blobs/")
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(node, "/")+peerPrefix+blobName, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.secret)
	if off > 0 || n >= 0 {
		end := ""
		if n >= 0 {
			end = strconv.FormatInt(off+n-1, 10)
		}
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+end)
	}
	return p.client.Do(req)
}

// find returns the node whose spool holds name. None: ErrNotFound if every
// node answered, ErrUnavailable if one that did not may have it.
func (p *peers) find(ctx context.Context, name string) (string, int64, error) {
	nodes, err := p.others(ctx)
	if err != nil {
		return "", 0, err
	}
	var unreachable []string
	for _, node := range nodes {
		resp, err := p.request(ctx, http.MethodHead, node, name, 0, -1)
		if err != nil {
			unreachable = append(unreachable, node)
			continue
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return node, resp.ContentLength, nil
		case http.StatusNotFound:
		default:
			unreachable = append(unreachable, node)
		}
	}
	if len(unreachable) > 0 {
		return "", 0, fmt.Errorf("%w: blob %s may be in the spool of %s, which cannot be reached",
			store.ErrUnavailable, name, strings.Join(unreachable, ", "))
	}
	return "", 0, store.ErrNotFound
}

// Stat implements blob.Backend.
func (p *peers) Stat(ctx context.Context, name string) (blob.Info, error) {
	_, size, err := p.find(ctx, name)
	return blob.Info{Name: name, Size: size}, err
}

// Open implements blob.Backend.
func (p *peers) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	node, _, err := p.find(ctx, name)
	if err != nil {
		return nil, err
	}
	resp, err := p.request(ctx, http.MethodGet, node, name, off, n)
	if err != nil {
		return nil, fmt.Errorf("%w: read from %s: %v", store.ErrUnavailable, node, err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
		return resp.Body, nil
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return io.NopCloser(strings.NewReader("")), nil
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, store.ErrNotFound
	}
	return nil, fmt.Errorf("%w: read from %s: %s", store.ErrUnavailable, node, resp.Status)
}

var errReadOnly = errors.New("the other nodes' spools are read-only")

// Create, Delete and List are not for peers: nothing writes to another
// node's spool.
func (p *peers) Create(context.Context, string, int64) (blob.Writer, error) { return nil, errReadOnly }
func (p *peers) Delete(context.Context, string) error                       { return errReadOnly }
func (p *peers) List(context.Context, string, string, int) ([]blob.Info, string, error) {
	return nil, "", errReadOnly
}
