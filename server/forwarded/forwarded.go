// Package forwarded finds the client of a request that reached attachd
// through reverse proxies: its address and the scheme it used, from the
// X-Forwarded-For, X-Forwarded-Proto and Forwarded (RFC 7239) headers.
//
// Those headers are believed only from the proxies the operator lists
// (trusted_proxies): anyone else can write them. A proxy appends the address
// of whoever connected to it, so the list is read from the right, skipping
// trusted proxies, and the first address that is not one of them is the
// client. Everything to its left was written by the client and is ignored.
package forwarded

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// MaxHeaderBytes bounds how much of each forwarding header is read: only its
// rightmost MaxHeaderBytes, which hold the hops of the trusted proxies. A
// client may send a longer header; what it wrote is never needed.
const MaxHeaderBytes = 4 << 10

// maxHops bounds how many trusted proxies one request may have passed.
const maxHops = 32

// ErrMalformed is matched by the error of a request whose forwarding headers,
// written by a trusted proxy, cannot be read.
var ErrMalformed = errors.New("malformed forwarding header")

// ErrConflict, which also matches ErrMalformed, is the error of a request
// from a trusted proxy whose Forwarded and X-Forwarded-For name different
// clients. A proxy writes one kind and passes the other on as the client
// wrote it, so the client may have chosen either: such a request must be
// refused, not taken as the proxy's own (whose address allow_from may admit).
var ErrConflict = fmt.Errorf("%w: Forwarded and X-Forwarded-For disagree", ErrMalformed)

// Proxies is the set of trusted proxies. The zero value trusts none.
type Proxies struct {
	nets []netip.Prefix
}

// Parse returns the proxies listed as CIDRs or single addresses.
func Parse(list []string) (*Proxies, error) {
	p := &Proxies{}
	for i, s := range list {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return nil, fmt.Errorf("entry %d: %q is not a CIDR or an address", i+1, s)
			}
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if pfx.Addr().Is4In6() {
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
		}
		p.nets = append(p.nets, pfx.Masked())
	}
	return p, nil
}

// Empty reports whether no proxy is trusted.
func (p *Proxies) Empty() bool { return p == nil || len(p.nets) == 0 }

// Trusts reports whether a is a trusted proxy.
func (p *Proxies) Trusts(a netip.Addr) bool {
	if p == nil {
		return false
	}
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// Client is who sent a request.
type Client struct {
	Addr      netip.Addr // the client's address: Peer's unless a trusted proxy forwarded the request
	Peer      netip.Addr // the other end of the connection; invalid if RemoteAddr is not an address
	Scheme    string     // "http" or "https", as the client used it
	Forwarded bool       // Addr or Scheme comes from a trusted proxy's headers
}

// Client returns the client of r. When the peer is a trusted proxy whose
// headers cannot be read, it returns the peer, as if nothing were forwarded,
// and an error matching ErrMalformed that says why; a scheme that cannot be
// read leaves the connection's, and the address is still taken.
func (p *Proxies) Client(r *http.Request) (Client, error) {
	c := Client{Scheme: "http"}
	if r.TLS != nil {
		c.Scheme = "https"
	}
	c.Peer = peerAddr(r.RemoteAddr)
	c.Addr = c.Peer
	if !c.Peer.IsValid() || !p.Trusts(c.Peer) {
		return c, nil
	}
	hop, err := p.client(r.Header)
	if errors.Is(err, ErrConflict) {
		return c, err
	}
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if hop.addr.IsValid() {
		c.Addr, c.Forwarded = hop.addr, true
	}
	if hop.protoErr != nil {
		return c, fmt.Errorf("%w: scheme ignored: %v", ErrMalformed, hop.protoErr)
	}
	if hop.proto != "" {
		c.Scheme, c.Forwarded = hop.proto, true
	}
	return c, nil
}

// hop is one entry of a forwarding header: who connected to the proxy that
// wrote it, and with which scheme ("" if not said).
type hop struct {
	addr     netip.Addr
	proto    string
	protoErr error // the scheme given could not be read
}

// client walks the headers of a request from a trusted proxy. A request
// carrying both kinds of header must say the same in both: a proxy that sets
// only one passes the other on as the client wrote it.
func (p *Proxies) client(h http.Header) (hop, error) {
	fwd, xff := h.Values("Forwarded"), h.Values("X-Forwarded-For")
	var fromFwd, fromXFF hop
	var err error
	if len(fwd) > 0 {
		if fromFwd, err = p.walk(fwd, true, parseForwarded); err != nil {
			return hop{}, fmt.Errorf("Forwarded: %w", err)
		}
	}
	if len(xff) > 0 {
		n, total := 0, 0
		if fromXFF, n, total, err = p.walkXFF(xff); err != nil {
			return hop{}, fmt.Errorf("X-Forwarded-For: %w", err)
		}
		fromXFF.proto, fromXFF.protoErr = xfProto(h.Values("X-Forwarded-Proto"), n, total)
	} else if len(fwd) == 0 {
		// X-Forwarded-Proto alone: a proxy that does not forward addresses.
		fromXFF.proto, fromXFF.protoErr = xfProto(h.Values("X-Forwarded-Proto"), 0, 0)
		return fromXFF, nil
	}
	switch {
	case len(fwd) == 0:
		return fromXFF, nil
	case len(xff) == 0:
		return fromFwd, nil
	case fromFwd.addr != fromXFF.addr:
		return hop{}, fmt.Errorf("%w: Forwarded names client %v, X-Forwarded-For %v", ErrConflict, fromFwd.addr, fromXFF.addr)
	}
	if fromFwd.proto == "" && fromFwd.protoErr == nil {
		fromFwd.proto, fromFwd.protoErr = fromXFF.proto, fromXFF.protoErr
	}
	return fromFwd, nil
}

// walkXFF walks X-Forwarded-For and also returns the position, from the
// right and from 1, of the hop it stopped at, and how many hops it holds.
func (p *Proxies) walkXFF(values []string) (h hop, n, total int, err error) {
	h, err = p.walk(values, false, func(elem string) (hop, error) {
		n++
		a, err := parseNode(strings.TrimSpace(elem))
		return hop{addr: a}, err
	})
	if err == nil {
		elems, _ := rightmost(values, false)
		total = len(elems)
	}
	return h, n, total, err
}

// walk reads the elements of a comma-separated header from the right, each
// with parse, and returns the first whose address is not a trusted proxy, or
// the leftmost if all are. Elements left of it are never parsed: the client
// wrote them.
func (p *Proxies) walk(values []string, quoted bool, parse func(string) (hop, error)) (hop, error) {
	elems, cut := rightmost(values, quoted)
	if len(elems) == 0 {
		return hop{}, errors.New("empty")
	}
	var last hop
	for i := len(elems) - 1; i >= 0; i-- {
		if len(elems)-i > maxHops {
			return hop{}, fmt.Errorf("more than %d trusted proxies", maxHops)
		}
		h, err := parse(elems[i])
		if err != nil {
			return hop{}, err
		}
		if !p.Trusts(h.addr) {
			return h, nil
		}
		last = h
	}
	if cut {
		return hop{}, fmt.Errorf("longer than %d bytes", MaxHeaderBytes)
	}
	return last, nil
}

// rightmost splits header values (in order, each a comma-separated list,
// with quoted strings if quoted) into elements, keeping the rightmost
// MaxHeaderBytes; cut reports whether some were left out.
func rightmost(values []string, quoted bool) (elems []string, cut bool) {
	total := 0
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		if total+len(v) > MaxHeaderBytes {
			v = v[len(v)-(MaxHeaderBytes-total):]
			// Drop the element cut in the middle.
			if j := strings.IndexByte(v, ','); j >= 0 {
				v = v[j+1:]
			} else {
				v = ""
			}
			cut = true
		}
		total += len(v)
		switch {
		case strings.TrimSpace(v) == "":
		case quoted:
			elems = append(split(v, ','), elems...)
		default:
			elems = append(strings.Split(v, ","), elems...)
		}
		if cut {
			break
		}
	}
	return elems, cut
}

// split splits s at sep outside quoted strings. An unterminated quote runs
// to the end: that element fails to parse.
func split(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// parseForwarded parses one element of a Forwarded header (RFC 7239 §4):
// semicolon-separated name=value pairs, a value a token or a quoted string.
func parseForwarded(elem string) (hop, error) {
	var h hop
	var haveFor bool
	for _, pair := range split(elem, ';') {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return hop{}, fmt.Errorf("%q is not name=value", pair)
		}
		value, err := unquote(strings.TrimSpace(value))
		if err != nil {
			return hop{}, err
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "for":
			if haveFor {
				return hop{}, errors.New("for= given twice in one element")
			}
			if h.addr, err = parseNode(value); err != nil {
				return hop{}, err
			}
			haveFor = true
		case "proto":
			if h.proto, err = scheme(value); err != nil {
				h.protoErr = fmt.Errorf("Forwarded: %w", err)
			}
		}
	}
	if !haveFor {
		return hop{}, fmt.Errorf("element %q has no for=", strings.TrimSpace(elem))
	}
	return h, nil
}

// unquote returns the value of a token or a quoted string (RFC 9110 §5.6.4).
func unquote(v string) (string, error) {
	if !strings.HasPrefix(v, `"`) {
		if strings.ContainsAny(v, "\" \t\\") {
			return "", fmt.Errorf("bad value %q", v)
		}
		return v, nil
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) {
		return "", fmt.Errorf("unterminated quoted string %s", v)
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		c := v[i]
		if c == '\\' {
			i++
			if i == len(v)-1 {
				return "", fmt.Errorf("bad quoted string %s", v)
			}
			c = v[i]
		} else if c == '"' {
			return "", fmt.Errorf("bad quoted string %s", v)
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// parseNode parses the address of a hop: "192.0.2.1", "192.0.2.1:80",
// "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:80". An obfuscated or
// "unknown" node (RFC 7239 §6) is an error: the client cannot be told.
func parseNode(s string) (netip.Addr, error) {
	a, err := netip.Addr{}, error(nil)
	if ap, perr := netip.ParseAddrPort(s); perr == nil {
		a = ap.Addr()
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, err = netip.ParseAddr(s[1 : len(s)-1])
	} else {
		a, err = netip.ParseAddr(s)
	}
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

// xfProto returns the scheme of X-Forwarded-Proto for the hop at position n
// from the right of X-Forwarded-For's total (0: no X-Forwarded-For).
// Proxies commonly set one value; a list must line up with X-Forwarded-For.
func xfProto(values []string, n, total int) (string, error) {
	if len(values) == 0 {
		return "", nil
	}
	s, err := xfProtoList(values, n, total)
	if err != nil {
		return "", fmt.Errorf("X-Forwarded-Proto: %w", err)
	}
	return s, nil
}

func xfProtoList(values []string, n, total int) (string, error) {
	var elems []string
	for _, v := range values {
		if len(v) > MaxHeaderBytes {
			return "", fmt.Errorf("longer than %d bytes", MaxHeaderBytes)
		}
		elems = append(elems, strings.Split(v, ",")...)
	}
	if len(elems) == 1 {
		return scheme(strings.TrimSpace(elems[0]))
	}
	if n == 0 || len(elems) != total {
		return "", fmt.Errorf("%d schemes do not line up with X-Forwarded-For", len(elems))
	}
	return scheme(strings.TrimSpace(elems[len(elems)-n]))
}

// scheme returns s as "http" or "https".
func scheme(s string) (string, error) {
	switch strings.ToLower(s) {
	case "http":
		return "http", nil
	case "https":
		return "https", nil
	}
	return "", fmt.Errorf("scheme %q is neither http nor https", s)
}

// peerAddr parses a request's RemoteAddr (host:port, or a bare address).
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	a, err := netip.ParseAddr(remote)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
