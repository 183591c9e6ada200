package proto

import "github.com/hashicorp/go-plugin"

// APIVersion is the plugin protocol version this code speaks. Bump it only for
// a breaking change, and keep serving the old one beside it for a while.
const APIVersion = 1

// PluginSetKey names the one go-plugin "plugin" in a plugin's set: it carries
// every service the plugin implements.
const PluginSetKey = "attachd"

// MaxChunkSize and DefaultChunkSize bound the chunks streamed in either
// direction. 256 KiB measured well in grpc-go, and 4 MiB keeps every message
// under gRPC's default receive limit.
const (
	MaxChunkSize     = 4 << 20
	DefaultChunkSize = 256 << 10
)

// MaxMessageSize caps gRPC messages on both sides: a chunk plus headroom, so a
// bug gets an error instead of an out-of-memory kill.
const MaxMessageSize = 8 << 20

// StreamWindow is the HTTP/2 flow-control window of a byte stream, on both
// sides: a few chunks in flight. gRPC starts at 64 KiB and grows it only by
// its bandwidth estimate, which left a 256 KiB-chunk stream waiting for
// window updates after every chunk. Memory stays bounded by it.
const StreamWindow = 2 << 20

// Handshake is shared by attachd and every plugin. The cookie is not a
// security measure (SHA-256 pinning is); it lets a plugin run by hand say so
// instead of hanging. Never change its value: old plugins would stop loading.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "ATTACHD_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "15QP5RJ1MLRPB6M3IjXJkeMyJrkXCe",
}
