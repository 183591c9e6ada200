//go:build !unix

package fdpass

import (
	"context"
	"errors"
	"os"
)

// EnvVar names the environment variable through which the host tells the
// plugin the number of its end of the socket pair.
const EnvVar = "ATTACHD_PLUGIN_FD_SOCKET"

// TokenSize is the length of a token in bytes.
const TokenSize = 16

var errUnsupported = errors.New("descriptor passing needs Unix")

// Sender is the host's end of the socket pair.
type Sender struct{}

// Pair fails: there is no descriptor passing on this system, and plugins
// stream every byte over gRPC.
func Pair() (*Sender, *os.File, error) { return nil, nil, errUnsupported }

// NewToken returns a fresh token.
func NewToken() []byte { return make([]byte, TokenSize) }

// Send fails.
func (s *Sender) Send(token []byte, f *os.File) error { return errUnsupported }

// Close does nothing.
func (s *Sender) Close() error { return nil }

// Receiver is the plugin's end.
type Receiver struct{}

// FromEnv returns nil: no descriptors are passed on this system.
func FromEnv() (*Receiver, error) { return nil, nil }

// Take fails.
func (r *Receiver) Take(ctx context.Context, token []byte) (*os.File, error) {
	return nil, errUnsupported
}

// Close does nothing.
func (r *Receiver) Close() error { return nil }
