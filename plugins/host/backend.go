package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/plugins/internal/chunkio"
	"github.com/attachd/attachd/plugins/internal/fdpass"
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
	if inst.fdPassing {
		return b.openPipe(ctx, inst, name, off, n)
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
	w := &blobWriter{b: b, inst: inst, name: name, stream: stream, cancel: cancel, chunk: inst.chunk}
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
	inst   *instance
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

// WriteFile implements blob.FileWriter: a plugin that takes descriptors
// reads the range from the host's own open file; any other gets it in
// chunks.
func (w *blobWriter) WriteFile(f *os.File, off, n int64) (int64, error) {
	if !w.inst.fdPassing {
		return io.CopyBuffer(struct{ io.Writer }{w}, io.NewSectionReader(f, off, n), make([]byte, w.chunk))
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, fmt.Errorf("plugin %s: write %q: writer already finished", w.b.s.name, w.name)
	}
	if err := w.flush(); err != nil {
		return 0, err
	}
	token := fdpass.NewToken()
	if err := w.inst.fds.Send(token, f); err != nil {
		w.b.s.check()
		w.err = fmt.Errorf("plugin %s: write %q: %w: %v", w.b.s.name, w.name, ErrUnavailable, err)
		w.cancel()
		return 0, w.err
	}
	m := &pb.WriteFromFd{Token: token, Offset: off, Length: n}
	if err := w.send(&pb.WriteRequest{Msg: &pb.WriteRequest_File{File: m}}); err != nil {
		return 0, err
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

// openPipe serves Open for a plugin that takes descriptors: it writes the
// bytes into a pipe the host passes it, and the Read stream carries only
// the outcome.
func (b *backend) openPipe(ctx context.Context, inst *instance, name string, off, n int64) (io.ReadCloser, error) {
	pr, pw, err := fdpass.Pipe()
	if err != nil {
		return nil, fmt.Errorf("plugin %s: read %q: %w", b.s.name, name, err)
	}
	token := fdpass.NewToken()
	err = inst.fds.Send(token, pw)
	// Only the plugin's copy of the write end may stay open: its closing,
	// by the plugin or by its death, is the end of the bytes.
	pw.Close()
	if err != nil {
		pr.Close()
		b.s.check()
		return nil, fmt.Errorf("plugin %s: read %q: %w: %v", b.s.name, name, ErrUnavailable, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := func() { cancel(); pr.Close() }
	stream, err := inst.storage.Read(ctx, &pb.ReadRequest{Name: name, Offset: off, Length: n, FdToken: token})
	if err != nil {
		stop()
		return nil, b.mapErr("read", name, err)
	}
	// The first message says the blob is open (or why not).
	if c, err := stream.Recv(); err != nil || len(c.Data) > 0 {
		stop()
		if err == nil || err == io.EOF {
			return nil, fmt.Errorf("plugin %s: read %q: %w", b.s.name, name, errPipeProtocol)
		}
		return nil, b.mapErr("read", name, err)
	}
	return &pipeReader{b: b, name: name, r: pr, stream: stream, stop: stop}, nil
}

var errPipeProtocol = errors.New("the plugin broke the pipe protocol (a chunk where it must send none)")

// pipeReader reads a blob from the pipe a plugin writes it into. The pipe
// ends alike whether the plugin finished or died, so at its end the reader
// waits for the Read stream's status: only a clean end is io.EOF.
type pipeReader struct {
	b      *backend
	name   string
	r      *os.File
	stream grpc.ServerStreamingClient[pb.Chunk]
	stop   func()
	err    error // sticky
}

func (p *pipeReader) Read(buf []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.r.Read(buf)
	switch {
	case err == io.EOF:
		p.err = p.end()
	case err != nil:
		p.err = fmt.Errorf("plugin %s: read %q: %w", p.b.s.name, p.name, err)
	}
	if n > 0 && p.err == io.EOF {
		return n, nil // io.EOF on the next call
	}
	return n, p.err
}

// end returns the plugin's verdict once the pipe has ended.
func (p *pipeReader) end() error {
	_, err := p.stream.Recv()
	switch {
	case err == io.EOF:
		return io.EOF
	case err != nil:
		return p.b.mapErr("read", p.name, err)
	}
	return fmt.Errorf("plugin %s: read %q: %w", p.b.s.name, p.name, errPipeProtocol)
}

// Close cancels the read; a plugin still writing sees the call cancelled
// and its pipe broken.
func (p *pipeReader) Close() error {
	p.stop()
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
