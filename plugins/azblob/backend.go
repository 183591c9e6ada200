package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/attachd/attachd/plugins/sdk"
)

// backend implements sdk.Storage over one container.
type backend struct {
	mu        sync.Mutex
	client    *container.Client
	blockSize int
	sas       bool
	ready     bool // the container exists

	// noStartFrom is set once Azure refuses the startFrom listing
	// parameter (older API versions or emulators): List then skips to the
	// cursor itself.
	noStartFrom atomic.Bool
}

func (b *backend) setup(c *container.Client, blockSize int, sas bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.client, b.blockSize, b.sas, b.ready = c, blockSize, sas, false
}

// container returns the client once the container exists, creating it on
// first use rather than in Configure, so that attachd starts while Azure is
// unreachable.
func (b *backend) container(ctx context.Context) (*container.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client == nil {
		return nil, errors.New("azblob: not configured")
	}
	if b.ready {
		return b.client, nil
	}
	_, err := b.client.Create(ctx, nil)
	var re *azcore.ResponseError
	switch {
	case err == nil || bloberror.HasCode(err, bloberror.ContainerAlreadyExists):
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden && b.sas:
		// A container SAS may not create containers; the container is
		// then the operator's to create, and calls will say if it is missing.
	default:
		return nil, mapErr("create container", "", err)
	}
	b.ready = true
	return b.client, nil
}

// checkName refuses names Azure would treat specially or that cannot be
// listed back as written.
func checkName(name string) error {
	if name == "" || len(name) > 1024 || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("%w: %q", sdk.ErrInvalidName, name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q", sdk.ErrInvalidName, name)
		}
	}
	return nil
}

// mapErr turns Azure errors into the SDK's: 404 is not found; no response,
// throttling and 5xx are transient.
func mapErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return fmt.Errorf("%w: azblob %s %s: %v", sdk.ErrUnavailable, op, name, err)
	}
	switch {
	case re.StatusCode == http.StatusNotFound:
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return fmt.Errorf("azblob %s %s: container not found", op, name)
		}
		return sdk.ErrNotFound
	case re.StatusCode >= 500, re.StatusCode == http.StatusTooManyRequests, re.StatusCode == http.StatusRequestTimeout:
		return fmt.Errorf("%w: azblob %s %s: %s", sdk.ErrUnavailable, op, name, re.ErrorCode)
	}
	return fmt.Errorf("azblob %s %s: %d %s", op, name, re.StatusCode, re.ErrorCode)
}

func (b *backend) Stat(ctx context.Context, name string) (sdk.BlobInfo, error) {
	if err := checkName(name); err != nil {
		return sdk.BlobInfo{}, err
	}
	c, err := b.container(ctx)
	if err != nil {
		return sdk.BlobInfo{}, err
	}
	p, err := c.NewBlobClient(name).GetProperties(ctx, nil)
	if err != nil {
		return sdk.BlobInfo{}, mapErr("stat", name, err)
	}
	info := sdk.BlobInfo{Name: name}
	if p.ContentLength != nil {
		info.Size = *p.ContentLength
	}
	if p.LastModified != nil {
		info.ModTime = *p.LastModified
	}
	return info, nil
}

func (b *backend) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	c, err := b.container(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		// Azure reads Count 0 as "to the end"; an empty range still has
		// to report a missing blob.
		if _, err := b.Stat(ctx, name); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts blob.DownloadStreamOptions
	if off > 0 || n > 0 {
		opts.Range = blob.HTTPRange{Offset: off, Count: max(n, 0)}
	}
	resp, err := c.NewBlobClient(name).DownloadStream(ctx, &opts)
	if bloberror.HasCode(err, bloberror.InvalidRange) {
		// The range starts at or past the end: the blob exists, and
		// there is nothing to read.
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		return nil, mapErr("read", name, err)
	}
	return resp.Body, nil
}

func (b *backend) Create(ctx context.Context, name string, size int64) (sdk.BlobWriter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	c, err := b.container(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	return &writer{
		bb:     c.NewBlockBlobClient(name),
		name:   name,
		upload: rand.Text(),
		size:   b.blockSize,
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, 2),
	}, nil
}

// writer stages full blocks in the background, two at a time at most, so
// that uploading overlaps receiving while memory stays at three blocks.
type writer struct {
	bb     *blockblob.Client
	name   string
	upload string // random: concurrent uploads of one name stage distinct blocks
	size   int
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	buf    []byte
	blocks []string
	done   bool

	mu  sync.Mutex
	err error
}

func (w *writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *writer) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := w.failed(); err != nil {
			return n, err
		}
		if w.buf == nil {
			w.buf = make([]byte, 0, w.size)
		}
		k := min(len(p), w.size-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == w.size {
			w.stage()
		}
	}
	return n, nil
}

// stage uploads the buffer as the next block. Block ids within a blob must
// all have the same length: upload id plus a fixed-width index.
func (w *writer) stage() {
	buf := w.buf
	w.buf = nil
	id := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%06d", w.upload, len(w.blocks)))
	w.blocks = append(w.blocks, id)
	w.sem <- struct{}{}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.sem }()
		_, err := w.bb.StageBlock(w.ctx, id, streaming.NopCloser(bytes.NewReader(buf)), nil)
		if err != nil {
			w.fail(mapErr("stage block", w.name, err))
		}
	}()
}

func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("azblob commit %s: already finished", w.name)
	}
	w.done = true
	defer w.cancel()
	if len(w.blocks) == 0 {
		// Small blob: one Put Blob instead of a block and a block list.
		_, err := w.bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(w.buf)), nil)
		return mapErr("upload", w.name, err)
	}
	if len(w.buf) > 0 {
		w.stage()
	}
	w.wg.Wait()
	if err := w.failed(); err != nil {
		return err
	}
	_, err := w.bb.CommitBlockList(ctx, w.blocks, nil)
	return mapErr("commit block list", w.name, err)
}

// Abort stops staging. Blocks never committed stay invisible, and Azure
// discards them after a week.
func (w *writer) Abort() error {
	if !w.done {
		w.done = true
		w.cancel()
		w.wg.Wait()
	}
	return nil
}

func (b *backend) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	c, err := b.container(ctx)
	if err != nil {
		return err
	}
	_, err = c.NewBlobClient(name).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if err := mapErr("delete", name, err); err != nil && !errors.Is(err, sdk.ErrNotFound) {
		return err
	}
	return nil
}

// List pages through Azure's flat listing. The cursor is the last name
// returned, as attachd's backends promise, not Azure's opaque marker, so
// listing restarts at the cursor with startFrom, or by skipping to it.
func (b *backend) List(ctx context.Context, prefix, cursor string, limit int) ([]sdk.BlobInfo, string, error) {
	c, err := b.container(ctx)
	if err != nil {
		return nil, "", err
	}
	out, next, err := b.list(ctx, c, prefix, cursor, limit, !b.noStartFrom.Load())
	if err != nil && cursor != "" && !b.noStartFrom.Load() && bloberror.HasCode(err, bloberror.InvalidQueryParameterValue, bloberror.UnsupportedQueryParameter) {
		b.noStartFrom.Store(true)
		out, next, err = b.list(ctx, c, prefix, cursor, limit, false)
	}
	if err != nil {
		return nil, "", mapErr("list", prefix, err)
	}
	return out, next, nil
}

func (b *backend) list(ctx context.Context, c *container.Client, prefix, cursor string, limit int, startFrom bool) ([]sdk.BlobInfo, string, error) {
	opts := &container.ListBlobsFlatOptions{Prefix: &prefix}
	if startFrom && cursor != "" && strings.HasPrefix(cursor, prefix) {
		opts.StartFrom = &cursor
	}
	if limit > 0 {
		// One more than asked, to know whether another page follows.
		opts.MaxResults = ptr(int32(min(limit+1, 5000)))
	}
	var out []sdk.BlobInfo
	pager := c.NewListBlobsFlatPager(opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, "", err
		}
		for _, it := range page.Segment.BlobItems {
			if it.Name == nil || *it.Name <= cursor {
				continue
			}
			if limit > 0 && len(out) == limit {
				return out, out[limit-1].Name, nil
			}
			info := sdk.BlobInfo{Name: *it.Name}
			if p := it.Properties; p != nil {
				if p.ContentLength != nil {
					info.Size = *p.ContentLength
				}
				if p.LastModified != nil {
					info.ModTime = *p.LastModified
				}
			}
			out = append(out, info)
		}
	}
	return out, "", nil
}

func ptr[T any](v T) *T { return &v }
