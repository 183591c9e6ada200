// Package sdk is what an attachd plugin imports. A storage plugin implements
// Storage and calls ServeStorage from main; a hook plugin implements Hook and
// calls ServeHook. The SDK speaks gRPC to attachd through go-plugin, decodes
// the plugin's config table (see Configurer), streams bytes in chunks with
// backpressure, and logs to attachd through Logger. A plugin must never
// write to stdout: the first line on stdout is go-plugin's handshake.
package sdk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/attachd/attachd/plugins/proto"
)

// Plugin describes what one plugin executable serves. Set Storage, Hook, or
// both; the host learns the kinds from it.
type Plugin struct {
	Name    string // must match the file name attachd-plugin-<Name>
	Version string // the plugin's own version, shown by `attachd plugins list`
	Storage Storage
	Hook    Hook
	// ConfigSchema optionally documents the config table as JSON Schema.
	ConfigSchema string
}

// ServeStorage serves a storage backend until attachd stops the plugin.
func ServeStorage(name, version string, s Storage) {
	Serve(Plugin{Name: name, Version: version, Storage: s})
}

// ServeHook serves a post-save hook until attachd stops the plugin.
func ServeHook(name, version string, h Hook) {
	Serve(Plugin{Name: name, Version: version, Hook: h})
}

// Serve serves p until attachd stops the plugin. Run by hand, it prints an
// explanation on stderr and exits with status 1.
func Serve(p Plugin) {
	log := Logger()
	srv := newServer(p, log)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  pb.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{pb.APIVersion: {pb.PluginSetKey: &grpcPlugin{srv: srv}}},
		GRPCServer:       newGRPCServer,
		Logger:           log,
	})
}

// newGRPCServer caps messages at pb.MaxMessageSize: gRPC's 4 MiB default
// receive limit is too tight for a 4 MiB chunk plus framing, and no limit
// would turn a bug into an out-of-memory kill.
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts,
		grpc.MaxRecvMsgSize(pb.MaxMessageSize),
		grpc.MaxSendMsgSize(pb.MaxMessageSize),
		grpc.MaxConcurrentStreams(256),
		// Uploads stream into the plugin; see pb.StreamWindow.
		grpc.InitialWindowSize(pb.StreamWindow),
		grpc.InitialConnWindowSize(2*pb.StreamWindow),
	)
	return grpc.NewServer(opts...)
}

var (
	stderr  = os.Stderr // saved before go-plugin redirects os.Stderr into its stdio stream
	logOnce sync.Once
	logger  hclog.Logger
)

// Logger returns the plugin's logger. Its JSON lines on stderr are re-logged
// by attachd at their level, tagged with the plugin's name.
func Logger() hclog.Logger {
	logOnce.Do(func() {
		logger = hclog.New(&hclog.LoggerOptions{
			Level:      hclog.Debug,
			Output:     stderr,
			JSONFormat: true,
		})
	})
	return logger
}

// grpcPlugin is the one go-plugin "plugin" of the set: it registers every
// service the plugin implements on go-plugin's gRPC server.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

func (g *grpcPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	g.srv.broker = broker
	pb.RegisterInfoServer(s, &infoServer{s: g.srv})
	if g.srv.p.Storage != nil {
		pb.RegisterStorageServer(s, &storageServer{s: g.srv})
	}
	if g.srv.p.Hook != nil {
		pb.RegisterHookServer(s, &hookServer{s: g.srv})
	}
	return nil
}

func (g *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: a plugin does not dial plugins")
}

// NameFromExecutable returns the plugin name in this executable's file name
// (attachd-plugin-<name>), or fallback if it has none. A hook that serves
// under it can run as several instances: copy attachd-plugin-webhook to
// attachd-plugin-crm and configure [plugin.crm] as a second webhook.
func NameFromExecutable(fallback string) string {
	base := filepath.Base(os.Args[0])
	if name, ok := strings.CutPrefix(base, "attachd-plugin-"); ok && name != "" {
		return strings.TrimSuffix(name, ".exe")
	}
	return fallback
}
