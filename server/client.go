package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/attachd/attachd/server/forwarded"
)

// clientKey is the context key of a request's forwarded.Client.
type clientKey struct{}

// withClient returns r as its client sent it: when a trusted proxy forwarded
// it, RemoteAddr becomes the client's address, so that allow_from, the login
// rate limits and the access log all see the same client. The connection's
// peer and the client's scheme go in the context. A request whose client
// cannot be told (forwarded.ErrConflict) is refused.
func (s *Server) withClient(r *http.Request) (*http.Request, error) {
	c, err := s.proxies.Load().Client(r)
	if errors.Is(err, forwarded.ErrConflict) {
		return r, err
	}
	if err != nil {
		// Debug only: any client behind the proxy can write these headers.
		s.log.Debug("forwarding headers ignored; the client is the proxy", "peer", c.Peer.String(), "err", err)
	}
	r = r.WithContext(context.WithValue(r.Context(), clientKey{}, c))
	if c.Addr != c.Peer {
		r.RemoteAddr = c.Addr.String()
	}
	return r, nil
}

// clientOf returns the client withClient found for r.
func clientOf(r *http.Request) forwarded.Client {
	c, ok := r.Context().Value(clientKey{}).(forwarded.Client)
	if !ok {
		c.Scheme = "http"
		if r.TLS != nil {
			c.Scheme = "https"
		}
	}
	return c
}

// SetTrustedProxies replaces the proxies whose forwarding headers are
// believed; requests already admitted keep the client they were given.
func (s *Server) SetTrustedProxies(list []string) error {
	p, err := forwarded.Parse(list)
	if err != nil {
		return err
	}
	s.proxies.Store(p)
	return nil
}
