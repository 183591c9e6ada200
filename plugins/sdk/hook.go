package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/attachd/attachd/plugins/internal/chunkio"
	pb "github.com/attachd/attachd/plugins/proto"
)

// Hook receives post-save events. Deliveries are at least once: use
// Event.EventID to recognise a repeat. Returning an error is the same as
// Result{Outcome: Retry}.
type Hook interface {
	Deliver(ctx context.Context, ev Event) (Result, error)
}

// Event is a post-save event (JSON schema 1, documented in the README).
type Event struct {
	Schema     int       `json:"schema"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"` // attachment.created, attachment.updated, attachment.deleted
	OccurredAt time.Time `json:"occurred_at"`
	Attempt    int       `json:"attempt"`
	RequestID  string    `json:"request_id,omitempty"`
	Reason     string    `json:"reason,omitempty"` // "retention" for a delete by a retention rule
	Object     Object    `json:"object"`
	// Raw is the event exactly as attachd sent it, e.g. to forward it.
	Raw json.RawMessage `json:"-"`
}

// Object is the object an event is about, as it is now.
type Object struct {
	Key         string          `json:"key"`
	Size        int64           `json:"size"`
	SHA256      string          `json:"sha256"`
	ContentType string          `json:"content_type"`
	DocID       string          `json:"doc_id,omitempty"`
	MediaID     string          `json:"media_id,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
}

// Outcome is a hook's verdict on one delivery.
type Outcome int

// Outcomes.
const (
	OK    Outcome = iota // done
	Retry                // try again later, after Result.RetryAfter if set
	Fail                 // give up: the delivery becomes a dead letter
)

// Result is a hook's answer to one delivery.
type Result struct {
	Outcome     Outcome
	RetryAfter  time.Duration
	Message     string
	Annotations map[string]string // stored in the object's metadata
}

type hookServer struct {
	pb.UnimplementedHookServer
	s *server
}

func (hs *hookServer) Deliver(ctx context.Context, req *pb.DeliverRequest) (*pb.DeliverResponse, error) {
	if _, err := hs.s.ready(); err != nil {
		return nil, err
	}
	var ev Event
	if err := json.Unmarshal(req.EventJson, &ev); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "event: %v", err)
	}
	ev.Raw = req.EventJson
	if req.Attempt > 0 {
		ev.Attempt = int(req.Attempt)
	}
	res, err := hs.s.p.Hook.Deliver(ctx, ev)
	if err != nil {
		return &pb.DeliverResponse{Outcome: pb.Outcome_OUTCOME_RETRY, Message: err.Error()}, nil
	}
	out := pb.Outcome_OUTCOME_OK
	switch res.Outcome {
	case Retry:
		out = pb.Outcome_OUTCOME_RETRY
	case Fail:
		out = pb.Outcome_OUTCOME_FAIL
	}
	return &pb.DeliverResponse{
		Outcome:      out,
		RetryAfterMs: res.RetryAfter.Milliseconds(),
		Message:      res.Message,
		Annotations:  res.Annotations,
	}, nil
}

// hostBlobs is the connection to the host's HostBlobs service. One plugin
// process serves one host, so a package variable is enough.
var hostBlobs struct {
	mu     sync.Mutex
	broker *plugin.GRPCBroker
	id     uint32
	client pb.HostBlobsClient
}

func setHostBlobs(b *plugin.GRPCBroker, id uint32) {
	hostBlobs.mu.Lock()
	defer hostBlobs.mu.Unlock()
	if hostBlobs.id != id {
		hostBlobs.broker, hostBlobs.id, hostBlobs.client = b, id, nil
	}
}

func hostBlobsClient() (pb.HostBlobsClient, error) {
	hostBlobs.mu.Lock()
	defer hostBlobs.mu.Unlock()
	if hostBlobs.client != nil {
		return hostBlobs.client, nil
	}
	if hostBlobs.broker == nil {
		return nil, errors.New("sdk: attachd offers no content to this plugin")
	}
	// Dialled lazily and once: each broker connection is a new socket.
	conn, err := hostBlobs.broker.DialWithOptions(hostBlobs.id,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(pb.MaxMessageSize)))
	if err != nil {
		return nil, fmt.Errorf("sdk: connect to attachd for content: %w", err)
	}
	hostBlobs.client = pb.NewHostBlobsClient(conn)
	return hostBlobs.client, nil
}

// Content streams the bytes of the object at key, as long as its current
// version has the given SHA-256 (ErrNotFound otherwise). Call it from
// Deliver, with Deliver's context; close the reader when done.
func Content(ctx context.Context, key, sha256 string) (io.ReadCloser, error) {
	return ContentRange(ctx, key, sha256, 0, -1)
}

// ContentRange is Content for n bytes from off (n < 0: to the end).
func ContentRange(ctx context.Context, key, sha256 string, off, n int64) (io.ReadCloser, error) {
	c, err := hostBlobsClient()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.Read(ctx, &pb.BlobReadRequest{Key: key, Sha256: sha256, Offset: off, Length: n})
	if err != nil {
		cancel()
		return nil, fromStatus(err)
	}
	r := chunkio.NewReader(func() ([]byte, error) {
		c, err := stream.Recv()
		if err != nil {
			return nil, fromStatus(err)
		}
		return c.Data, nil
	}, cancel)
	// Wait for the first chunk so that a missing object fails here.
	if err := r.Fill(); err != nil && err != io.EOF {
		cancel()
		return nil, err
	}
	return r, nil
}

func fromStatus(err error) error {
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("%w: %s", ErrNotFound, status.Convert(err).Message())
	}
	return err
}
