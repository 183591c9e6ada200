package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/attachd/attachd/plugins/internal/fdpass"
	pb "github.com/attachd/attachd/plugins/proto"
)

// server holds the state shared by a plugin's services.
type server struct {
	p      Plugin
	log    hclog.Logger
	broker *plugin.GRPCBroker
	fds    *fdpass.Receiver // nil: the host passes no descriptors

	mu         sync.Mutex
	configured bool
	chunkSize  int
}

func newServer(p Plugin, log hclog.Logger) *server {
	s := &server{p: p, log: log, chunkSize: pb.DefaultChunkSize}
	if p.Storage != nil {
		fds, err := fdpass.FromEnv()
		if err != nil {
			// Streaming still works; only the shortcut is lost.
			log.Warn("descriptor passing is off", "error", err)
		}
		s.fds = fds
	}
	return s
}

// fdWait bounds the wait for a passed descriptor: the host sends it before
// the call that names it, so it is normally there already.
const fdWait = 30 * time.Second

// takeFd returns the descriptor the host passed under token.
func (s *server) takeFd(ctx context.Context, token []byte) (*os.File, error) {
	if s.fds == nil {
		return nil, status.Error(codes.FailedPrecondition, "this plugin was given no descriptor socket")
	}
	ctx, cancel := context.WithTimeout(ctx, fdWait)
	defer cancel()
	f, err := s.fds.Take(ctx, token)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "passed descriptor: %v", err)
	}
	return f, nil
}

// ready refuses calls before Configure: a plugin restarted by the host must
// not serve with a zero configuration.
func (s *server) ready() (chunkSize int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.configured {
		return 0, status.Error(codes.FailedPrecondition, "plugin not configured yet")
	}
	return s.chunkSize, nil
}

type infoServer struct {
	pb.UnimplementedInfoServer
	s *server
}

func (i *infoServer) Describe(ctx context.Context, _ *pb.Empty) (*pb.DescribeResponse, error) {
	r := &pb.DescribeResponse{
		Name:         i.s.p.Name,
		Version:      i.s.p.Version,
		ApiVersions:  []int32{pb.APIVersion},
		ConfigSchema: i.s.p.ConfigSchema,
	}
	if i.s.p.Storage != nil {
		r.Kinds = append(r.Kinds, pb.Kind_KIND_STORAGE)
	}
	if i.s.p.Hook != nil {
		r.Kinds = append(r.Kinds, pb.Kind_KIND_HOOK)
	}
	return r, nil
}

func (i *infoServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	c := Config{config: req.ConfigJson, secrets: req.SecretsJson}
	seen := map[any]bool{}
	for _, v := range []any{i.s.p.Storage, i.s.p.Hook} {
		cf, ok := v.(Configurer)
		if !ok || seen[v] {
			continue
		}
		seen[v] = true
		if err := cf.Configure(ctx, c); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	if req.HostBlobsBrokerId != 0 {
		setHostBlobs(i.s.broker, req.HostBlobsBrokerId)
	}
	size := chooseChunkSize(req.ProposedChunkSize)
	i.s.mu.Lock()
	i.s.configured = true
	i.s.chunkSize = size
	i.s.mu.Unlock()
	return &pb.ConfigureResponse{ChunkSize: uint32(size), FdPassing: i.s.fds != nil}, nil
}

// chooseChunkSize takes the host's proposal within 64 KiB–4 MiB, the range
// where gRPC streams are both efficient and light on memory.
func chooseChunkSize(proposed uint32) int {
	switch {
	case proposed == 0:
		return pb.DefaultChunkSize
	case proposed < 64<<10:
		return 64 << 10
	case proposed > pb.MaxChunkSize:
		return pb.MaxChunkSize
	}
	return int(proposed)
}

// Configurer is implemented by a Storage or Hook that takes configuration.
// Configure is called once before any other call, and again after each
// restart of the plugin; an error (ideally naming the bad key, see
// ConfigError) makes attachd refuse the plugin.
type Configurer interface {
	Configure(ctx context.Context, c Config) error
}

// Config is the plugin's [plugin.NAME.config] and [plugin.NAME.secrets]
// tables, as handed over by attachd.
type Config struct {
	config, secrets json.RawMessage
}

// NewConfig returns the Config attachd would hand over for the given config
// and secrets tables: for running a plugin's Configure in a test or a
// benchmark, without attachd.
func NewConfig(config, secrets map[string]any) (Config, error) {
	var c Config
	var err error
	if config == nil {
		config = map[string]any{}
	}
	if secrets == nil {
		secrets = map[string]any{}
	}
	if c.config, err = json.Marshal(config); err != nil {
		return c, fmt.Errorf("encode config table: %w", err)
	}
	if c.secrets, err = json.Marshal(secrets); err != nil {
		return c, fmt.Errorf("encode secrets table: %w", err)
	}
	return c, nil
}

// Decode fills v (a pointer to a struct with json tags) from the config
// table, then from the secrets table, so a struct field may be set in either.
// A key v has no field for is an error naming the key.
func (c Config) Decode(v any) error {
	for _, t := range []struct {
		table string
		data  json.RawMessage
	}{{"config", c.config}, {"secrets", c.secrets}} {
		if len(t.data) == 0 {
			continue
		}
		if err := decodeStrict(t.data, v); err != nil {
			return fmt.Errorf("%s: %w", t.table, err)
		}
	}
	return nil
}

// ConfigError returns an error about one config key, in the form attachd
// shows to the operator.
func ConfigError(key, format string, args ...any) error {
	return fmt.Errorf("key %q: %s", key, fmt.Sprintf(format, args...))
}

// Errors a Storage returns (wrapped or not); the host maps them back.
var (
	ErrNotFound    = errors.New("not found")
	ErrInvalidName = errors.New("invalid blob name")
	// ErrUnavailable marks a transient failure: the remote store is down.
	ErrUnavailable = errors.New("remote store unreachable")
)

// toStatus maps an author's error to a gRPC status the host understands.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrInvalidName):
		code = codes.InvalidArgument
	case errors.Is(err, ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}
