package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/plugins/hook"
	"github.com/attachd/attachd/plugins/internal/chunkio"
	pb "github.com/attachd/attachd/plugins/proto"
)

// hookClient is a hook plugin as a hook.Hook.
type hookClient struct {
	s *supervisor
}

var _ hook.Hook = (*hookClient)(nil)

// Deliver implements hook.Hook. An error means the plugin could not be
// asked (down, timed out); the dispatcher retries.
func (h *hookClient) Deliver(ctx context.Context, ev hook.Event) (hook.Result, error) {
	inst, err := h.s.current()
	if err != nil {
		return hook.Result{}, err
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return hook.Result{}, fmt.Errorf("plugin %s: event %s: %w", h.s.name, ev.EventID, err)
	}
	resp, err := inst.hook.Deliver(ctx, &pb.DeliverRequest{EventJson: data, Attempt: int32(ev.Attempt)})
	if err != nil {
		if status.Code(err) == codes.Unavailable {
			h.s.check()
			err = fmt.Errorf("%w: %s", ErrUnavailable, status.Convert(err).Message())
		}
		return hook.Result{}, fmt.Errorf("plugin %s: deliver %s: %w", h.s.name, ev.EventID, err)
	}
	res := hook.Result{
		Outcome:     hook.OK,
		RetryAfter:  time.Duration(resp.RetryAfterMs) * time.Millisecond,
		Message:     resp.Message,
		Annotations: resp.Annotations,
	}
	switch resp.Outcome {
	case pb.Outcome_OUTCOME_RETRY:
		res.Outcome = hook.Retry
	case pb.Outcome_OUTCOME_FAIL:
		res.Outcome = hook.Fail
	}
	return res, nil
}

// hostBlobs serves object bytes to hook plugins, from the ContentOpener.
type hostBlobs struct {
	pb.UnimplementedHostBlobsServer
	open  hook.ContentOpener
	chunk int
}

// newHostBlobsServer returns the broker's server factory for HostBlobs.
func newHostBlobsServer(open hook.ContentOpener, chunk int) func([]grpc.ServerOption) *grpc.Server {
	return func(opts []grpc.ServerOption) *grpc.Server {
		opts = append(opts, grpc.MaxRecvMsgSize(pb.MaxMessageSize), grpc.MaxSendMsgSize(pb.MaxMessageSize))
		s := grpc.NewServer(opts...)
		pb.RegisterHostBlobsServer(s, &hostBlobs{open: open, chunk: chunk})
		return s
	}
}

func (h *hostBlobs) Read(req *pb.BlobReadRequest, stream grpc.ServerStreamingServer[pb.Chunk]) error {
	ctx := stream.Context()
	rc, err := h.open(ctx, req.Key, req.Sha256)
	if errors.Is(err, blob.ErrNotFound) {
		return status.Errorf(codes.NotFound, "%s with sha256 %s: not found (deleted or overwritten since)", req.Key, req.Sha256)
	}
	if err != nil {
		return status.Errorf(codes.Unavailable, "%s: %v", req.Key, err)
	}
	defer rc.Close()
	if req.Offset > 0 {
		if s, ok := rc.(io.Seeker); ok {
			_, err = s.Seek(req.Offset, io.SeekStart)
		} else {
			_, err = io.CopyN(io.Discard, rc, req.Offset)
		}
		if err != nil && err != io.EOF {
			return status.Errorf(codes.Internal, "%s: skip to %d: %v", req.Key, req.Offset, err)
		}
	}
	var r io.Reader = rc
	if req.Length >= 0 {
		r = io.LimitReader(rc, req.Length)
	}
	err = chunkio.Send(r, h.chunk, func(b []byte) error { return stream.Send(&pb.Chunk{Data: b}) })
	if err != nil && status.Code(err) == codes.Unknown {
		return status.Errorf(codes.Internal, "%s: %v", req.Key, err)
	}
	return err
}
