package forwarded

import (
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	p, err := Parse([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:198.51.100.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "11.0.0.1": false, "192.0.2.7": true, "192.0.2.8": false,
		"2001:db8::5": true, "2001:db9::5": false, "198.51.100.9": true, "::ffff:10.0.0.1": true,
	} {
		if got := p.Trusts(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Trusts(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "", "10.0.0.1/8/8"} {
		if _, err := Parse([]string{"10.0.0.0/8", bad}); err == nil || !strings.Contains(err.Error(), "entry 2") {
			t.Errorf("Parse(%q): %v, want an error naming entry 2", bad, err)
		}
	}
	var none *Proxies
	if !none.Empty() || none.Trusts(netip.MustParseAddr("127.0.0.1")) {
		t.Error("nil Proxies trusts something")
	}
}

func TestClient(t *testing.T) {
	p, err := Parse([]string{"10.0.0.0/24", "2001:db8:1::/48"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		remote string
		header []string // name, value pairs; a name may repeat
		tls    bool
		addr   string // want
		scheme string
		bad    bool // want ErrMalformed
	}{
		{name: "no proxy", remote: "192.0.2.1:5000", addr: "192.0.2.1", scheme: "http"},
		{name: "tls", remote: "192.0.2.1:5000", tls: true, addr: "192.0.2.1", scheme: "https"},
		{name: "untrusted peer's XFF ignored", remote: "192.0.2.1:5000",
			header: []string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", "https"}, addr: "192.0.2.1", scheme: "http"},
		{name: "untrusted peer's Forwarded ignored", remote: "192.0.2.1:5000",
			header: []string{"Forwarded", "for=198.51.100.1;proto=https"}, addr: "192.0.2.1", scheme: "http"},
		{name: "trusted peer, no header", remote: "10.0.0.2:5000", addr: "10.0.0.2", scheme: "http"},
		{name: "one proxy", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", "https"}, addr: "198.51.100.1", scheme: "https"},
		{name: "spoofed left part", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "10.0.0.9, 127.0.0.1, 198.51.100.1"}, addr: "198.51.100.1", scheme: "http"},
		{name: "client claims a trusted address", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "10.0.0.3, 198.51.100.1"}, addr: "198.51.100.1", scheme: "http"},
		{name: "two trusted hops", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "203.0.113.5, 198.51.100.1, 10.0.0.3"}, addr: "198.51.100.1", scheme: "http"},
		{name: "all trusted: leftmost", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "10.0.0.4, 10.0.0.3"}, addr: "10.0.0.4", scheme: "http"},
		{name: "garbage left of the client is never read", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", `"<script>, unknown,, 198.51.100.1`}, addr: "198.51.100.1", scheme: "http"},
		{name: "several header lines", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "203.0.113.5", "X-Forwarded-For", "198.51.100.1, 10.0.0.3"}, addr: "198.51.100.1", scheme: "http"},
		{name: "port and v6 in XFF", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "[2001:db8:2::7]:4711"}, addr: "2001:db8:2::7", scheme: "http"},
		{name: "mapped v4", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "::ffff:198.51.100.1"}, addr: "198.51.100.1", scheme: "http"},
		{name: "v6 proxy", remote: "[2001:db8:1::1]:5000",
			header: []string{"X-Forwarded-For", "198.51.100.1"}, addr: "198.51.100.1", scheme: "http"},
		{name: "trusted hop unreadable", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "198.51.100.1, not-an-ip"}, addr: "10.0.0.2", scheme: "http", bad: true},
		{name: "unknown client", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "unknown"}, addr: "10.0.0.2", scheme: "http", bad: true},
		{name: "empty XFF", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", ""}, addr: "10.0.0.2", scheme: "http", bad: true},
		{name: "zone", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "fe80::1%eth0"}, addr: "10.0.0.2", scheme: "http", bad: true},
		{name: "XFP list lines up", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "198.51.100.1, 10.0.0.3", "X-Forwarded-Proto", "https, http"}, addr: "198.51.100.1", scheme: "https"},
		{name: "XFP list does not line up", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", "https, http, http"}, addr: "198.51.100.1", scheme: "http", bad: true},
		{name: "XFP not a scheme", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", "javascript"}, addr: "198.51.100.1", scheme: "http", bad: true},
		{name: "XFP alone", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-Proto", "HTTPS"}, addr: "10.0.0.2", scheme: "https"},
		{name: "Forwarded", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", `for=198.51.100.1;proto=https;by=10.0.0.2`}, addr: "198.51.100.1", scheme: "https"},
		{name: "Forwarded v6 quoted with port", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", `For="[2001:db8:2::7]:4711"; Proto=http`}, addr: "2001:db8:2::7", scheme: "http"},
		{name: "Forwarded chain", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", `for=203.0.113.5, for=198.51.100.1;proto=https, for=10.0.0.3;proto=http`}, addr: "198.51.100.1", scheme: "https"},
		{name: "Forwarded spoof with quoted comma", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", `for="10.0.0.3, for=10.0.0.4", for=198.51.100.1`}, addr: "198.51.100.1", scheme: "http"},
		{name: "Forwarded unterminated quote on its own line", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", `for="10.0.0.3`, "Forwarded", "for=198.51.100.1"}, addr: "198.51.100.1", scheme: "http"},
		{name: "Forwarded obfuscated client", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", `for=_hidden`}, addr: "10.0.0.2", scheme: "http", bad: true},
		{name: "Forwarded without for", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", `proto=https`}, addr: "10.0.0.2", scheme: "http", bad: true},
		{name: "Forwarded for twice", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", `for=198.51.100.1;for=198.51.100.2`}, addr: "10.0.0.2", scheme: "http", bad: true},
		{name: "Forwarded bad proto", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", `for=198.51.100.1;proto=ftp`}, addr: "198.51.100.1", scheme: "http", bad: true},
		{name: "both headers agree", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", "for=198.51.100.1;proto=https", "X-Forwarded-For", "198.51.100.1"}, addr: "198.51.100.1", scheme: "https"},
		{name: "both headers disagree: a client wrote one", remote: "10.0.0.2:5000",
			header: []string{"Forwarded", "for=203.0.113.66", "X-Forwarded-For", "198.51.100.1"}, addr: "10.0.0.2", scheme: "http", bad: true},
		{name: "trusted hops only in a huge header", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", strings.Repeat("10.0.0.3, ", 1000) + "10.0.0.3"}, addr: "10.0.0.2", scheme: "http", bad: true},
		{name: "huge spoofed part", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", strings.Repeat("x", 100<<10) + ", 198.51.100.1, 10.0.0.3"}, addr: "198.51.100.1", scheme: "http"},
		{name: "huge header line before the proxy's", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", strings.Repeat("1.1.1.1,", 10<<10), "X-Forwarded-For", "198.51.100.1"}, addr: "198.51.100.1", scheme: "http"},
		{name: "too many trusted hops", remote: "10.0.0.2:5000",
			header: []string{"X-Forwarded-For", "198.51.100.1" + strings.Repeat(", 10.0.0.3", maxHops+1)}, addr: "10.0.0.2", scheme: "http", bad: true},
		{name: "remote not an address", remote: "pipe", header: []string{"X-Forwarded-For", "198.51.100.1"}, scheme: "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for i := 0; i+1 < len(tt.header); i += 2 {
				r.Header.Add(tt.header[i], tt.header[i+1])
			}
			c, err := p.Client(r)
			if conflict := strings.Contains(tt.name, "disagree"); conflict != errors.Is(err, ErrConflict) {
				t.Errorf("err = %v, want ErrConflict: %v", err, conflict)
			}
			if tt.bad != errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want malformed: %v", err, tt.bad)
			}
			var want netip.Addr
			if tt.addr != "" {
				want = netip.MustParseAddr(tt.addr)
			}
			if c.Addr != want || c.Scheme != tt.scheme {
				t.Errorf("Client = %v %s, want %v %s", c.Addr, c.Scheme, want, tt.scheme)
			}
			if !tt.bad && c.Forwarded != (c.Addr != c.Peer || c.Scheme != map[bool]string{true: "https", false: "http"}[tt.tls]) {
				t.Errorf("Forwarded = %v for %+v", c.Forwarded, c)
			}
		})
	}
}

// FuzzClient: no header makes Client panic, answer another scheme than
// http or https, or believe a peer outside the list.
func FuzzClient(f *testing.F) {
	f.Add("10.0.0.2:1", "198.51.100.1, 10.0.0.3", `for=198.51.100.1;proto=https`, "https")
	f.Add("192.0.2.1:1", "1.2.3.4", `for="[::1]:80"`, "http")
	f.Add("10.0.0.2:1", `"a,b"`, `for="\"`, "")
	p, err := Parse([]string{"10.0.0.0/24"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff, fwd, xfp string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		for k, v := range map[string]string{"X-Forwarded-For": xff, "Forwarded": fwd, "X-Forwarded-Proto": xfp} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		c, _ := p.Client(r)
		if c.Scheme != "http" && c.Scheme != "https" {
			t.Fatalf("scheme %q", c.Scheme)
		}
		if c.Addr != c.Peer && !p.Trusts(c.Peer) {
			t.Fatalf("untrusted peer %v forwarded %v", c.Peer, c.Addr)
		}
	})
}
