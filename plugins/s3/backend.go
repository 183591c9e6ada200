package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"

	"github.com/attachd/attachd/plugins/sdk"
)

// backend implements sdk.Storage over one bucket, under an optional prefix.
type backend struct {
	mu       sync.Mutex
	client   *minio.Core
	bucket   string
	region   string
	prefix   string // "" or ends in "/"
	partSize int
	ready    bool // the bucket exists

	// parts recycles part buffers (*[]byte of partSize) between uploads,
	// so a stream of large uploads does not allocate its size in garbage.
	parts sync.Pool
}

func (b *backend) setup(c *minio.Core, bucket, region, prefix string, partSize int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.client, b.bucket, b.region, b.prefix, b.ready = c, bucket, region, prefix, false
	if b.partSize != partSize {
		b.parts = sync.Pool{}
	}
	b.partSize = partSize
}

// conn is what one call works with, read under the lock.
type conn struct {
	c        *minio.Core
	bucket   string
	prefix   string
	partSize int
}

// conn returns the client once the bucket exists, creating the bucket on
// first use rather than in Configure, so that attachd starts while S3 is
// unreachable.
func (b *backend) conn(ctx context.Context) (conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client == nil {
		return conn{}, errors.New("s3: not configured")
	}
	cn := conn{b.client, b.bucket, b.prefix, b.partSize}
	if b.ready {
		return cn, nil
	}
	exists, err := b.client.BucketExists(ctx, b.bucket)
	switch er := minio.ToErrorResponse(err); {
	case err == nil && exists:
	case err == nil:
		if err := b.createBucket(ctx); err != nil {
			return conn{}, err
		}
	case er.StatusCode == http.StatusForbidden && er.Code == minio.AccessDenied:
		// Keys allowed objects but not HeadBucket: the bucket is then the
		// operator's to create, and calls will say if it is missing. (A
		// wrong key gets a more precise code from MinIO, but not from
		// Amazon, whose HEAD answers carry no body.)
		sdk.Logger().Warn("cannot check that the bucket exists; assuming it does", "bucket", b.bucket, "error", err)
	default:
		return conn{}, b.mapErr("check bucket", "", err)
	}
	b.ready = true
	return cn, nil
}

// createBucket makes the bucket; one made meanwhile by another node is fine.
func (b *backend) createBucket(ctx context.Context) error {
	err := b.client.MakeBucket(ctx, b.bucket, minio.MakeBucketOptions{Region: b.region})
	switch code := minio.ToErrorResponse(err).Code; {
	case err == nil:
		sdk.Logger().Info("bucket created", "bucket", b.bucket)
	case code == minio.BucketAlreadyOwnedByYou:
	case code == minio.BucketAlreadyExists:
		return fmt.Errorf("s3: bucket %q belongs to another account: choose another name", b.bucket)
	default:
		return b.mapErr("create bucket", "", err)
	}
	return nil
}

// checkName refuses names S3 would treat specially or that cannot be listed
// back as written.
func checkName(name string) error {
	if name == "" || len(name) > 1024 || !utf8.ValidString(name) || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("%w: %q", sdk.ErrInvalidName, name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q", sdk.ErrInvalidName, name)
		}
	}
	return nil
}

// mapErr turns S3 errors into the SDK's: a missing object is not found; no
// response, throttling and 5xx are transient; refused credentials say
// which key to check.
func (b *backend) mapErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	what := "s3 " + op
	if name != "" {
		what += " " + name
	}
	var er minio.ErrorResponse
	if !errors.As(err, &er) || er.StatusCode == 0 {
		return fmt.Errorf("%w: %s: %v", sdk.ErrUnavailable, what, err)
	}
	switch {
	case er.Code == minio.NoSuchBucket:
		return fmt.Errorf("%s: bucket %q not found", what, b.bucket)
	case er.StatusCode == http.StatusNotFound || er.Code == minio.NoSuchKey:
		return sdk.ErrNotFound
	case er.Code == minio.InvalidAccessKeyID:
		return fmt.Errorf("%s: %d %s: the server does not know access_key_id", what, er.StatusCode, er.Code)
	case er.Code == minio.SignatureDoesNotMatch:
		return fmt.Errorf("%s: %d %s: secret_access_key is wrong for access_key_id", what, er.StatusCode, er.Code)
	case er.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: %d %s: check access_key_id, secret_access_key and the key's rights on bucket %q", what, er.StatusCode, er.Code, b.bucket)
	case er.Code == minio.InvalidRegion || er.Code == minio.AuthorizationHeaderMalformed || er.Code == "PermanentRedirect" || er.StatusCode == http.StatusMovedPermanently:
		return fmt.Errorf("%s: %d %s: check region (the bucket's region is %q)", what, er.StatusCode, er.Code, er.Region)
	case er.StatusCode >= 500, er.StatusCode == http.StatusTooManyRequests, er.StatusCode == http.StatusRequestTimeout, er.Code == "SlowDown":
		return fmt.Errorf("%w: %s: %d %s", sdk.ErrUnavailable, what, er.StatusCode, er.Code)
	}
	return fmt.Errorf("%s: %d %s: %s", what, er.StatusCode, er.Code, er.Message)
}

func (b *backend) Stat(ctx context.Context, name string) (sdk.BlobInfo, error) {
	if err := checkName(name); err != nil {
		return sdk.BlobInfo{}, err
	}
	cn, err := b.conn(ctx)
	if err != nil {
		return sdk.BlobInfo{}, err
	}
	oi, err := cn.c.StatObject(ctx, cn.bucket, cn.prefix+name, minio.StatObjectOptions{})
	if err != nil {
		return sdk.BlobInfo{}, b.mapErr("stat", name, err)
	}
	return sdk.BlobInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified}, nil
}

func (b *backend) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("s3 read %s: negative offset %d", name, off)
	}
	cn, err := b.conn(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		// No range means nothing to read; a missing blob must still say so.
		if _, err := b.Stat(ctx, name); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	switch {
	case n > 0:
		err = opts.SetRange(off, off+n-1)
	case off > 0:
		err = opts.SetRange(off, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("s3 read %s: %v", name, err)
	}
	body, _, _, err := cn.c.GetObject(ctx, cn.bucket, cn.prefix+name, opts)
	if minio.ToErrorResponse(err).Code == minio.InvalidRange {
		// The range starts at or past the end: the blob exists, and there
		// is nothing to read.
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		return nil, b.mapErr("read", name, err)
	}
	return body, nil
}

func (b *backend) Create(ctx context.Context, name string, size int64) (sdk.BlobWriter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	cn, err := b.conn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	return &writer{
		b:      b,
		cn:     cn,
		name:   name,
		key:    cn.prefix + name,
		size:   size,
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, inFlight),
	}, nil
}

// getPart returns an empty buffer of one part's capacity.
func (b *backend) getPart(size int) []byte {
	if p, ok := b.parts.Get().(*[]byte); ok && cap(*p) == size {
		return (*p)[:0]
	}
	return make([]byte, 0, size)
}

func (b *backend) putPart(buf []byte, size int) {
	if cap(buf) == size {
		b.parts.Put(&buf)
	}
}

// writer keeps up to one part in memory. A blob that fits in one part is a
// single PUT at Commit; past that, the writer starts a multipart upload and
// sends each full part in the background, inFlight at a time, so that
// uploading overlaps receiving while memory stays at inFlight+1 parts: the
// bound per upload, whatever the blob's size.
// Completing the upload makes the blob visible; until then S3 shows nothing,
// and Abort or a failed Commit aborts the upload, discarding its parts.
type writer struct {
	b      *backend
	cn     conn
	name   string
	key    string
	size   int64 // announced, -1 if unknown
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	buf    []byte
	upload string // multipart upload id, once the first part is sent
	nparts int
	done   bool

	mu    sync.Mutex
	parts []minio.CompletePart // by part number - 1, filled as parts finish
	err   error
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
	if w.done {
		return 0, fmt.Errorf("s3 write %s: already finished", w.name)
	}
	ps := w.cn.partSize
	n := 0
	for len(p) > 0 {
		if err := w.failed(); err != nil {
			return n, err
		}
		if len(w.buf) == ps {
			// A full part with more to come: send it. (A blob of exactly one
			// part stays a single PUT.)
			w.stage()
			continue
		}
		if w.buf == nil {
			w.buf = w.newBuf()
		}
		k := min(len(p), ps-len(w.buf))
		if len(w.buf)+k > cap(w.buf) {
			// Only the first part of a blob of unknown size grows: by
			// doubling while small, then into a whole pooled part.
			var nb []byte
			if c := max(2*cap(w.buf), len(w.buf)+k); c <= growLimit {
				nb = make([]byte, 0, c)
			} else {
				nb = w.b.getPart(ps)
			}
			nb = append(nb, w.buf...)
			w.buf = nb
		}
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
	}
	return n, nil
}

// newBuf returns the buffer for the next part: the exact size of a blob
// smaller than a part, a pooled part once the blob is known to be larger,
// and a small growing buffer while it is not known.
func (w *writer) newBuf() []byte {
	ps := w.cn.partSize
	switch {
	case w.nparts > 0 || w.size > int64(ps):
		return w.b.getPart(ps)
	case w.size >= 0:
		return make([]byte, 0, w.size)
	}
	return make([]byte, 0, 64<<10)
}

// growLimit is the largest first-part buffer grown for a blob of unknown
// size before it moves into a pooled part: small blobs stay small, and a
// large one allocates at most this much besides its parts.
const growLimit = 1 << 20

// stage sends the buffer as the next part, in the background.
func (w *writer) stage() {
	buf := w.buf
	w.buf = nil
	if w.upload == "" {
		id, err := w.cn.c.NewMultipartUpload(w.ctx, w.cn.bucket, w.key, minio.PutObjectOptions{})
		if err != nil {
			w.fail(w.b.mapErr("start upload", w.name, err))
			return
		}
		w.upload = id
	}
	w.nparts++
	num := w.nparts
	w.mu.Lock()
	w.parts = append(w.parts, minio.CompletePart{PartNumber: num})
	w.mu.Unlock()
	w.sem <- struct{}{}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.sem }()
		part, err := w.cn.c.PutObjectPart(w.ctx, w.cn.bucket, w.key, w.upload, num, bytes.NewReader(buf), int64(len(buf)), minio.PutObjectPartOptions{})
		w.b.putPart(buf, w.cn.partSize)
		if err != nil {
			w.fail(w.b.mapErr(fmt.Sprintf("upload part %d of", num), w.name, err))
			return
		}
		w.mu.Lock()
		w.parts[num-1] = minio.CompletePart{
			PartNumber: num, ETag: part.ETag,
			ChecksumCRC32: part.ChecksumCRC32, ChecksumCRC32C: part.ChecksumCRC32C,
			ChecksumSHA1: part.ChecksumSHA1, ChecksumSHA256: part.ChecksumSHA256,
			ChecksumCRC64NVME: part.ChecksumCRC64NVME,
		}
		w.mu.Unlock()
	}()
}

func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("s3 commit %s: already finished", w.name)
	}
	w.done = true
	defer w.cancel()
	if err := w.failed(); err != nil {
		w.abort()
		return err
	}
	if w.nparts == 0 && w.upload == "" {
		// Small blob: one PUT.
		buf := w.buf
		w.buf = nil
		_, err := w.cn.c.PutObject(ctx, w.cn.bucket, w.key, bytes.NewReader(buf), int64(len(buf)), "", "", minio.PutObjectOptions{})
		w.b.putPart(buf, w.cn.partSize)
		return w.b.mapErr("upload", w.name, err)
	}
	if len(w.buf) > 0 {
		w.stage()
	}
	w.wg.Wait()
	if err := w.failed(); err != nil {
		w.abort()
		return err
	}
	_, err := w.cn.c.CompleteMultipartUpload(ctx, w.cn.bucket, w.key, w.upload, w.parts, minio.PutObjectOptions{})
	if err != nil {
		w.abort()
		return w.b.mapErr("complete upload", w.name, err)
	}
	return nil
}

// Abort stops sending parts and aborts the multipart upload, if one was
// started: S3 then discards its parts. Nothing of it was ever visible.
func (w *writer) Abort() error {
	if !w.done {
		w.done = true
		w.abort()
	}
	return nil
}

func (w *writer) abort() {
	w.cancel()
	w.wg.Wait()
	if w.buf != nil {
		w.b.putPart(w.buf, w.cn.partSize)
		w.buf = nil
	}
	if w.upload == "" {
		return
	}
	// Not the upload's context: it is usually cancelled by now.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.cn.c.AbortMultipartUpload(ctx, w.cn.bucket, w.key, w.upload); err != nil &&
		minio.ToErrorResponse(err).Code != minio.NoSuchUpload {
		sdk.Logger().Warn("could not abort the upload; its parts stay until a lifecycle rule removes them", "name", w.name, "error", err)
	}
	w.upload = ""
}

func (b *backend) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	cn, err := b.conn(ctx)
	if err != nil {
		return err
	}
	err = cn.c.RemoveObject(ctx, cn.bucket, cn.prefix+name, minio.RemoveObjectOptions{})
	if err := b.mapErr("delete", name, err); err != nil && !errors.Is(err, sdk.ErrNotFound) {
		return err
	}
	return nil
}

// List pages through S3's ListObjectsV2. The cursor is the last name
// returned, as attachd's backends promise, and becomes start-after.
func (b *backend) List(ctx context.Context, prefix, cursor string, limit int) ([]sdk.BlobInfo, string, error) {
	cn, err := b.conn(ctx)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithCancel(ctx) // stops the listing goroutine
	defer cancel()
	opts := minio.ListObjectsOptions{Prefix: cn.prefix + prefix, Recursive: true, MaxKeys: 1000}
	if cursor != "" {
		opts.StartAfter = cn.prefix + cursor
	}
	if limit > 0 {
		// One more than asked, to know whether another page follows.
		opts.MaxKeys = min(limit+1, 1000)
	}
	var out []sdk.BlobInfo
	for oi := range cn.c.Client.ListObjects(ctx, cn.bucket, opts) {
		if oi.Err != nil {
			return nil, "", b.mapErr("list", prefix, oi.Err)
		}
		name := strings.TrimPrefix(oi.Key, cn.prefix)
		if name <= cursor {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, out[limit-1].Name, nil
		}
		out = append(out, sdk.BlobInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified})
	}
	return out, "", nil
}
