package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/attachd/attachd/plugins/internal/fdpass"
	pb "github.com/attachd/attachd/plugins/proto"
)

// envAllowList is what a plugin inherits from attachd's environment: enough
// to find temp space and reach a remote store through a proxy, and nothing
// else (attachd's own secrets may live in its environment).
var envAllowList = []string{"PATH", "TMPDIR", "TZ", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// permanentError is a start failure that a restart cannot fix (bad pin,
// wrong name, refused configuration): the plugin is disabled at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// instance is one running plugin process and its gRPC clients.
type instance struct {
	client *plugin.Client
	rpc    plugin.ClientProtocol
	pid    int
	info   *pb.DescribeResponse
	chunk  int
	fds    *fdpass.Sender // the plugin's descriptor socket; nil if none
	// fdPassing: the plugin takes descriptors (ConfigureResponse.fd_passing).
	fdPassing bool
	storage   pb.StorageClient
	hook      pb.HookClient
	health    healthpb.HealthClient
}

// conn is what the host side of the go-plugin "plugin" dispenses.
type conn struct {
	broker *plugin.GRPCBroker
	cc     *grpc.ClientConn
}

type hostPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (hostPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("attachd does not serve plugins")
}

func (hostPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &conn{broker: b, cc: cc}, nil
}

// start runs the plugin, checks what it says it is, and configures it.
// Errors name the plugin and say what to fix.
func (s *supervisor) start() (*instance, error) {
	p, err := s.prepare()
	if err != nil {
		return nil, err
	}
	tail := &tailWriter{}
	var fds *fdpass.Sender
	var child *os.File
	if !s.m.cfg.StreamOnly {
		if fds, child, err = fdpass.Pair(); err != nil {
			// Streaming works without it; only the shortcut is lost.
			s.m.log.Warn("plugin gets no descriptor socket", "plugin", s.name, "err", err)
		}
	}
	client := s.newClient(p, tail, child)
	inst := &instance{client: client, fds: fds}
	fail := func(err error) (*instance, error) {
		s.kill(inst)
		return nil, err
	}
	rpc, err := client.Client()
	if child != nil {
		child.Close() // the plugin has its own copy, or never will
	}
	if pid, perr := strconv.Atoi(client.ID()); perr == nil {
		inst.pid = pid
	}
	if err != nil {
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return fail(permanent(fmt.Errorf("plugin %s: %s changed while being started: %w", s.name, p.path, err)))
		}
		// Killed first: go-plugin's Kill waits for its stderr reader, so the
		// tail then holds the plugin's last words (TestCrashAtStart).
		s.kill(inst)
		return nil, fmt.Errorf("plugin %s: start %s: %w", s.name, p.path, startError(err, tail.String()))
	}
	inst.rpc = rpc
	raw, err := rpc.Dispense(pb.PluginSetKey)
	if err != nil {
		return fail(fmt.Errorf("plugin %s: %w", s.name, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.m.cfg.StartTimeout)
	defer cancel()
	if err := s.handshake(ctx, inst, raw.(*conn), p); err != nil {
		return fail(err)
	}
	return inst, nil
}

// prepared is what start checks before it runs anything: the executable,
// its pinned hash, and the configuration to hand it.
type prepared struct {
	path            string
	want            []byte // the pinned SHA-256
	config, secrets []byte // JSON
}

// prepare locates the plugin, checks its pin, and encodes its configuration.
// Every error is permanent: retrying would not change it.
func (s *supervisor) prepare() (prepared, error) {
	var p prepared
	path, err := Locate(s.m.cfg.Dir, s.name)
	if err != nil {
		return p, permanent(err)
	}
	p.path = path
	want, err := hex.DecodeString(strings.ToLower(s.pin.SHA256))
	if err != nil || len(want) != sha256.Size {
		return p, permanent(fmt.Errorf("plugin %s: [plugin.%s] sha256 must be 64 hex digits", s.name, s.name))
	}
	p.want = want
	got, err := HashFile(path)
	if err != nil {
		return p, permanent(fmt.Errorf("plugin %s: %w", s.name, err))
	}
	if got != hex.EncodeToString(want) {
		return p, permanent(fmt.Errorf("plugin %s: %s has sha256 %s, but [plugin.%s] sha256 pins %s; "+
			"if you trust this file, set sha256 = %q", s.name, path, got, s.name, strings.ToLower(s.pin.SHA256), got))
	}
	if p.config, err = json.Marshal(orEmpty(s.pin.Config)); err != nil {
		return p, permanent(fmt.Errorf("plugin %s: [plugin.%s.config]: %w", s.name, s.name, err))
	}
	if p.secrets, err = json.Marshal(orEmpty(s.pin.Secrets)); err != nil {
		return p, permanent(fmt.Errorf("plugin %s: [plugin.%s.secrets]: %w", s.name, s.name, err))
	}
	return p, nil
}

// newClient builds the go-plugin client that runs the executable: gRPC only,
// mutual TLS, no host environment, the pin checked again right before exec.
// fdSocket, if not nil, is the plugin's end of its descriptor socket.
func (s *supervisor) newClient(p prepared, stderr *tailWriter, fdSocket *os.File) *plugin.Client {
	cmd := exec.Command(p.path)
	cmd.Env = allowedEnv()
	if fdSocket != nil {
		cmd.ExtraFiles = []*os.File{fdSocket} // descriptor 3 in the plugin
		cmd.Env = append(cmd.Env, fdpass.EnvVar+"=3")
	}
	setProcAttr(cmd)
	return plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  pb.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{pb.APIVersion: {pb.PluginSetKey: hostPlugin{}}},
		Cmd:              cmd,
		// go-plugin hashes the file again right before exec: the window in
		// which a swapped file would run is as short as it can be.
		SecureConfig:     &plugin.SecureConfig{Checksum: p.want, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     s.m.cfg.StartTimeout,
		Stderr:           stderr,
		Logger:           newHCLogger(s.m.log, s.name),
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(pb.MaxMessageSize), grpc.MaxCallSendMsgSize(pb.MaxMessageSize)),
			// Downloads stream from the plugin: a receive window of a few
			// chunks keeps it sending instead of waiting for window updates.
			grpc.WithInitialWindowSize(pb.StreamWindow), grpc.WithInitialConnWindowSize(2 * pb.StreamWindow)},
	})
}

// handshake asks the running plugin what it is, checks that against its
// file name and attachd's API version, and configures it.
func (s *supervisor) handshake(ctx context.Context, inst *instance, c *conn, p prepared) error {
	cfg := &s.m.cfg
	info, err := pb.NewInfoClient(c.cc).Describe(ctx, &pb.Empty{})
	if err != nil {
		return fmt.Errorf("plugin %s: describe: %w", s.name, err)
	}
	if info.Name != s.name {
		return permanent(fmt.Errorf("plugin %s: the file is named for %q but the plugin says it is %q", s.name, s.name, info.Name))
	}
	if !slices.Contains(info.ApiVersions, pb.APIVersion) {
		return permanent(fmt.Errorf("plugin %s: speaks plugin API versions %v, attachd speaks %d; get a matching build", s.name, info.ApiVersions, pb.APIVersion))
	}
	inst.info = info
	var brokerID uint32
	if slices.Contains(info.Kinds, pb.Kind_KIND_HOOK) && cfg.Content != nil {
		brokerID = c.broker.NextId()
		go c.broker.AcceptAndServe(brokerID, newHostBlobsServer(cfg.Content, cfg.ChunkSize))
	}
	resp, err := pb.NewInfoClient(c.cc).Configure(ctx, &pb.ConfigureRequest{
		ConfigJson:        p.config,
		SecretsJson:       p.secrets,
		ProposedChunkSize: uint32(cfg.ChunkSize),
		HostBlobsBrokerId: brokerID,
	})
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			return permanent(fmt.Errorf("plugin %s: [plugin.%s] %s", s.name, s.name, status.Convert(err).Message()))
		}
		return fmt.Errorf("plugin %s: configure: %w", s.name, err)
	}
	if resp.ChunkSize == 0 || resp.ChunkSize > pb.MaxChunkSize {
		return permanent(fmt.Errorf("plugin %s: chose chunk size %d, want 1 byte to %d", s.name, resp.ChunkSize, pb.MaxChunkSize))
	}
	inst.chunk = int(resp.ChunkSize)
	inst.fdPassing = resp.FdPassing && inst.fds != nil
	inst.health = healthpb.NewHealthClient(c.cc)
	if slices.Contains(info.Kinds, pb.Kind_KIND_STORAGE) {
		inst.storage = pb.NewStorageClient(c.cc)
	}
	if slices.Contains(info.Kinds, pb.Kind_KIND_HOOK) {
		inst.hook = pb.NewHookClient(c.cc)
	}
	return nil
}

// startError rewrites go-plugin's handshake errors, which list unlikely
// causes, into the likely one, with the end of the plugin's stderr.
func startError(err error, stderr string) error {
	msg := err.Error()
	if stderr != "" {
		stderr = "; its stderr ends with: " + stderr
	}
	const unrecognized = "Unrecognized remote plugin message: "
	i := strings.Index(msg, unrecognized)
	switch {
	case strings.Contains(msg, "Failed to read any lines from plugin's stdout"),
		strings.Contains(msg, "plugin exited before we could connect"):
		return fmt.Errorf("the plugin exited before the handshake%s", stderr)
	case i >= 0:
		line, _, _ := strings.Cut(msg[i+len(unrecognized):], "\n")
		return fmt.Errorf("the plugin wrote %q to stdout before serving; plugins must log to stderr only (sdk.Logger)", line)
	}
	return fmt.Errorf("%w%s", err, stderr)
}

// tailWriter keeps the last bytes written to it: the plugin's stderr, for
// start errors (the lines are also logged, but may be far away in the log).
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 1024

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > tailSize {
		w.buf = w.buf[len(w.buf)-tailSize:]
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.TrimSpace(string(w.buf))
}

func allowedEnv() []string {
	var env []string
	for _, k := range envAllowList {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// kill stops the plugin: go-plugin asks it to shut down, waits 2 s, then
// kills it; Kill has been seen to hang (terraform #38939), hence the timeout,
// after which the process group is killed regardless.
func (s *supervisor) kill(inst *instance) {
	done := make(chan struct{})
	go func() {
		inst.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.m.cfg.KillTimeout):
		s.m.log.Warn("plugin did not stop in time; killing it", "plugin", s.name, "pid", inst.pid)
	}
	killGroup(inst.pid)
	if inst.fds != nil {
		inst.fds.Close()
	}
}
