package sdk

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/attachd/attachd/plugins/internal/chunkio"
	pb "github.com/attachd/attachd/plugins/proto"
)

// Storage is a dumb blob store: named byte strings, written once and made
// visible whole, read by range. attachd's index owns names, folders, hashes
// and metadata; a backend only keeps bytes. Names are "/"-separated and never
// start with "/" or contain "." or ".." segments.
type Storage interface {
	// Stat returns the blob's size, or ErrNotFound.
	Stat(ctx context.Context, name string) (BlobInfo, error)
	// Open reads n bytes of the blob from off (n < 0: to the end). A range
	// past the end reads what there is, possibly nothing. A missing blob is
	// ErrNotFound.
	Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error)
	// Create starts writing a blob of size bytes (-1 if unknown). Nothing is
	// visible until Commit; Abort leaves nothing.
	Create(ctx context.Context, name string, size int64) (BlobWriter, error)
	// Delete removes the blob; a missing blob is not an error.
	Delete(ctx context.Context, name string) error
	// List returns up to limit blobs whose names start with prefix, in name
	// order, after cursor (""), and the cursor of the next page ("" at the end).
	List(ctx context.Context, prefix, cursor string, limit int) ([]BlobInfo, string, error)
}

// BlobWriter is a blob being written.
type BlobWriter interface {
	io.Writer
	// Commit makes the blob visible, replacing any blob of the same name.
	Commit(ctx context.Context) error
	// Abort discards what was written.
	Abort() error
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

func toPB(b BlobInfo) *pb.BlobInfo {
	r := &pb.BlobInfo{Name: b.Name, Size: b.Size}
	if !b.ModTime.IsZero() {
		r.ModTimeUnixNano = b.ModTime.UnixNano()
	}
	return r
}

type storageServer struct {
	pb.UnimplementedStorageServer
	s *server
}

func (ss *storageServer) Stat(ctx context.Context, req *pb.StatRequest) (*pb.BlobInfo, error) {
	if _, err := ss.s.ready(); err != nil {
		return nil, err
	}
	info, err := ss.s.p.Storage.Stat(ctx, req.Name)
	if err != nil {
		return nil, toStatus(err)
	}
	return toPB(info), nil
}

func (ss *storageServer) Read(req *pb.ReadRequest, stream grpc.ServerStreamingServer[pb.Chunk]) error {
	chunk, err := ss.s.ready()
	if err != nil {
		return err
	}
	if len(req.FdToken) > 0 {
		return ss.readToFd(req, stream)
	}
	ctx := stream.Context()
	r, err := ss.s.p.Storage.Open(ctx, req.Name, req.Offset, req.Length)
	if err != nil {
		return toStatus(err)
	}
	defer r.Close()
	return toStatus(chunkio.Send(r, chunk, func(b []byte) error {
		return stream.Send(&pb.Chunk{Data: b})
	}))
}

// readToFd serves a Read into the pipe the host passed: one empty chunk says
// the blob is open, the bytes go into the pipe, and the stream's status,
// which the host waits for after the pipe's end, says whether they are all
// there. Closing the pipe early (a crash) cannot pass for success.
func (ss *storageServer) readToFd(req *pb.ReadRequest, stream grpc.ServerStreamingServer[pb.Chunk]) error {
	ctx := stream.Context()
	f, err := ss.s.takeFd(ctx, req.FdToken)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := ss.s.p.Storage.Open(ctx, req.Name, req.Offset, req.Length)
	if err != nil {
		return toStatus(err)
	}
	defer r.Close()
	if err := stream.Send(&pb.Chunk{}); err != nil {
		return err
	}
	if _, err := io.CopyBuffer(ctxWriter{ctx, f}, r, make([]byte, fdCopyBuffer)); err != nil {
		return toStatus(err)
	}
	return toStatus(f.Close())
}

func (ss *storageServer) Write(stream grpc.ClientStreamingServer[pb.WriteRequest, pb.BlobInfo]) error {
	if _, err := ss.s.ready(); err != nil {
		return err
	}
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "write stream must start with a header")
	}
	w, err := ss.s.p.Storage.Create(ctx, h.Name, h.Size)
	if err != nil {
		return toStatus(err)
	}
	written, err := ss.receive(stream, w)
	if err != nil {
		// The host hung up or cancelled before committing, or sent what
		// could not be written: an abort.
		w.Abort()
		return err
	}
	if h.Size >= 0 && written != h.Size {
		w.Abort()
		return status.Errorf(codes.InvalidArgument, "blob %s: announced %d bytes, got %d", h.Name, h.Size, written)
	}
	if err := w.Commit(ctx); err != nil {
		w.Abort()
		return toStatus(err)
	}
	return stream.SendAndClose(&pb.BlobInfo{Name: h.Name, Size: written})
}

// receive writes the data of a Write stream into w until the commit
// message, and returns the byte count; any other end is an error.
func (ss *storageServer) receive(stream grpc.ClientStreamingServer[pb.WriteRequest, pb.BlobInfo], w BlobWriter) (int64, error) {
	var written int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return written, status.Error(codes.Aborted, "write stream ended without commit")
		}
		if err != nil {
			return written, err
		}
		switch m := msg.Msg.(type) {
		case *pb.WriteRequest_Data:
			if _, err := w.Write(m.Data); err != nil {
				return written, toStatus(err)
			}
			written += int64(len(m.Data))
		case *pb.WriteRequest_File:
			n, err := ss.writeFromFd(stream.Context(), m.File, w)
			written += n
			if err != nil {
				return written, err
			}
		case *pb.WriteRequest_Commit:
			return written, nil
		default:
			return written, status.Error(codes.InvalidArgument, "unexpected message in write stream")
		}
	}
}

// writeFromFd copies the range of the file the host passed into w, reading
// it at its offsets (the host's own file position is shared, and untouched).
func (ss *storageServer) writeFromFd(ctx context.Context, m *pb.WriteFromFd, w BlobWriter) (int64, error) {
	if m.Offset < 0 || m.Length < 0 {
		return 0, status.Errorf(codes.InvalidArgument, "file range %d+%d", m.Offset, m.Length)
	}
	f, err := ss.s.takeFd(ctx, m.Token)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := &ctxSectionReader{ctx: ctx, SectionReader: io.NewSectionReader(f, m.Offset, m.Length)}
	n, err := io.CopyBuffer(w, r, make([]byte, fdCopyBuffer))
	if err != nil {
		return n, toStatus(err)
	}
	if n != m.Length {
		return n, status.Errorf(codes.InvalidArgument, "passed file: read %d bytes of %d at %d", n, m.Length, m.Offset)
	}
	return n, nil
}

// fdCopyBuffer is the buffer between a passed descriptor and the author's
// reader or writer: large, so a backend that sends each Write as requests
// (SFTP packets, Azure blocks) gets big ones, as it would in process.
const fdCopyBuffer = 1 << 20

// ctxSectionReader stops reading a passed file once the call is cancelled.
// It keeps Size, which io.Copy's ReaderFrom users (pkg/sftp) use to plan
// concurrent writes.
type ctxSectionReader struct {
	ctx context.Context
	*io.SectionReader
}

func (r *ctxSectionReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.SectionReader.Read(p)
}

// ctxWriter stops writing into a passed pipe once the call is cancelled.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (w ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}

func (ss *storageServer) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.Empty, error) {
	if _, err := ss.s.ready(); err != nil {
		return nil, err
	}
	if err := ss.s.p.Storage.Delete(ctx, req.Name); err != nil {
		return nil, toStatus(err)
	}
	return &pb.Empty{}, nil
}

func (ss *storageServer) List(ctx context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	if _, err := ss.s.ready(); err != nil {
		return nil, err
	}
	blobs, next, err := ss.s.p.Storage.List(ctx, req.Prefix, req.Cursor, int(req.Limit))
	if err != nil {
		return nil, toStatus(err)
	}
	r := &pb.ListResponse{NextCursor: next, Blobs: make([]*pb.BlobInfo, len(blobs))}
	for i, b := range blobs {
		r.Blobs[i] = toPB(b)
	}
	return r, nil
}

// Page serves List for a backend that can only list everything: it keeps the
// blobs whose names start with prefix and sort after cursor, in name order,
// cut to limit (≤ 0: no limit), and returns the next page's cursor.
func Page(all []BlobInfo, prefix, cursor string, limit int) ([]BlobInfo, string) {
	var out []BlobInfo
	for _, b := range all {
		if strings.HasPrefix(b.Name, prefix) && b.Name > cursor {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b BlobInfo) int { return strings.Compare(a.Name, b.Name) })
	if limit > 0 && len(out) > limit {
		return out[:limit], out[limit-1].Name
	}
	return out, ""
}
