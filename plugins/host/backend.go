package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/plugins/internal/chunkio"
	pb "github.com/attachd/attachd/plugins/proto"
)

// backend is a storage plugin as a blob.Backend.
type backend struct {
	s *supervisor
}

var _ blob.Backend = (*backend)(nil)

// mapErr turns a plugin's gRPC status into the store's errors. Unavailable
// may mean the process died, so the supervisor is asked to check at once.
func (b *backend) mapErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.NotFound:
		return blob.ErrNotFound
	case codes.InvalidArgument:
		return fmt.Errorf("plugin %s: %s %q: %w: %s", b.s.name, op, name, blob.ErrInvalidName, st.Message())
	case codes.Unavailable:
		b.s.check()
		return fmt.Errorf("plugin %s: %s %q: %w: %s", b.s.name, op, name, ErrUnavailable, st.Message())
	case codes.Canceled:
		return fmt.Errorf("plugin %s: %s %q: %w", b.s.name, op, name, context.Canceled)
	case codes.DeadlineExceeded:
		return fmt.Errorf("plugin %s: %s %q: %w", b.s.name, op, name, context.DeadlineExceeded)
	}
	return fmt.Errorf("plugin %s: %s %q: %s", b.s.name, op, name, st.Message())
}

func fromPB(i *pb.BlobInfo) blob.Info {
	info := blob.Info{Name: i.Name, Size: i.Size}
	if i.ModTimeUnixNano != 0 {
		info.ModTime = time.Unix(0, i.ModTimeUnixNano)
	}
	return info
}

// Stat implements blob.Backend.
func (b *backend) Stat(ctx context.Context, name string) (blob.Info, error) {
	inst, err := b.s.current()
	if err != nil {
		return blob.Info{}, err
	}
	info, err := inst.storage.Stat(ctx, &pb.StatRequest{Name: name})
	if err != nil {
		return blob.Info{}, b.mapErr("stat", name, err)
	}
	return fromPB(info), nil
}

// Open implements blob.Backend. It waits for the first chunk so that a
// missing blob is reported here; closing the reader cancels the stream.
func (b *backend) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	inst, err := b.s.current()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := inst.storage.Read(ctx, &pb.ReadRequest{Name: name, Offset: off, Length: n})
	if err != nil {
		cancel()
		return nil, b.mapErr("read", name, err)
	}
	r := chunkio.NewReader(func() ([]byte, error) {
		c, err := stream.Recv()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, b.mapErr("read", name, err)
		}
		return c.Data, nil
	}, cancel)
	if err := r.Fill(); err != nil && err != io.EOF {
		cancel()
		return nil, err
	}
	return r, nil
}

// Create implements blob.Backend. The write stream lives in ctx: cancelling
// it aborts the blob, as does Abort or dropping the writer uncommitted.
func (b *backend) Create(ctx context.Context, name string, size int64) (blob.Writer, error) {
	inst, err := b.s.current()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := inst.storage.Write(ctx)
	if err != nil {
		cancel()
		return nil, b.mapErr("create", name, err)
	}
	w := &blobWriter{b: b, name: name, stream: stream, cancel: cancel, chunk: inst.chunk}
	if err := w.send(&pb.WriteRequest{Msg: &pb.WriteRequest_Header{Header: &pb.WriteHeader{Name: name, Size: size}}}); err != nil {
		cancel()
		return nil, err
	}
	// A writer dropped without Commit or Abort would hold the stream, and
	// the plugin's temporary blob, open for ever.
	runtime.AddCleanup(w, func(cancel context.CancelFunc) { cancel() }, cancel)
	return w, nil
}

type blobWriter struct {
	b      *backend
	name   string
	stream grpc.ClientStreamingClient[pb.WriteRequest, pb.BlobInfo]
	cancel context.CancelFunc
	chunk  int
	buf    []byte
	err    error // sticky: the first failure ends the blob
	done   bool
}

func (w *blobWriter) send(m *pb.WriteRequest) error {
	err := w.stream.Send(m)
	if err == io.EOF {
		// The plugin ended the stream: its status says why.
		_, err = w.stream.CloseAndRecv()
		if err == nil {
			err = errors.New("plugin ended the write stream early")
		}
	}
	if err != nil {
		w.err = w.b.mapErr("write", w.name, err)
		w.cancel()
		return w.err
	}
	return nil
}

func (w *blobWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(&pb.WriteRequest{Msg: &pb.WriteRequest_Data{Data: w.buf}})
	// A fresh buffer per chunk: gRPC may still hold the one just sent.
	w.buf = nil
	return err
}

func (w *blobWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, fmt.Errorf("plugin %s: write %q: writer already finished", w.b.s.name, w.name)
	}
	n := 0
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, w.chunk)
		}
		k := min(len(p), w.chunk-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == w.chunk {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *blobWriter) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("plugin %s: commit %q: writer already finished", w.b.s.name, w.name)
	}
	w.done = true
	defer w.cancel()
	if w.err != nil {
		return w.err
	}
	stop := context.AfterFunc(ctx, w.cancel)
	defer stop()
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.send(&pb.WriteRequest{Msg: &pb.WriteRequest_Commit{Commit: &pb.WriteCommit{}}}); err != nil {
		return err
	}
	if _, err := w.stream.CloseAndRecv(); err != nil {
		return w.b.mapErr("commit", w.name, err)
	}
	return nil
}

func (w *blobWriter) Abort() error {
	if !w.done {
		w.done = true
		w.cancel() // the plugin sees the stream cancelled and discards the blob
	}
	return nil
}

// Delete implements blob.Backend.
func (b *backend) Delete(ctx context.Context, name string) error {
	inst, err := b.s.current()
	if err != nil {
		return err
	}
	_, err = inst.storage.Delete(ctx, &pb.DeleteRequest{Name: name})
	return b.mapErr("delete", name, err)
}

// List implements blob.Backend.
func (b *backend) List(ctx context.Context, prefix, cursor string, limit int) ([]blob.Info, string, error) {
	inst, err := b.s.current()
	if err != nil {
		return nil, "", err
	}
	resp, err := inst.storage.List(ctx, &pb.ListRequest{Prefix: prefix, Cursor: cursor, Limit: int32(min(max(limit, 0), math.MaxInt32))})
	if err != nil {
		return nil, "", b.mapErr("list", prefix, err)
	}
	out := make([]blob.Info, len(resp.Blobs))
	for i, bi := range resp.Blobs {
		out[i] = fromPB(bi)
	}
	return out, resp.NextCursor, nil
}
