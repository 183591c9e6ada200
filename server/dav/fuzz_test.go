package dav

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/attachd/attachd/server/store"
)

// The fuzz targets feed the XML body parsers what readXMLBody would pass
// them, with the default limits, and check that each input is refused or
// parsed into values that write back as well-formed XML, within a bounded
// time and allocation. Seeds are in testdata/fuzz/<target>; test.sh runs
// each target briefly.

const (
	// Wall-clock on a shared CI machine: generous, yet far below the seconds
	// a quadratic namespace check took on a 1 MB body (8.6 s).
	fuzzMaxTime = 5 * time.Second
	// Allocations (garbage included) per byte of body: encoding/xml
	// allocates 30–60 bytes per byte of markup-heavy input; the check and
	// the parse together stay far below this unless something is
	// superlinear.
	fuzzAllocPerByte = 256
	fuzzAllocFixed   = 4 << 20
)

// fuzzBounded runs parse on body as the handler would — nothing over the
// body limit, an empty body as nil, checkXML first — and reports whether
// it did. It fails the input if that takes longer than fuzzMaxTime or
// allocates more than the bound.
func fuzzBounded(t *testing.T, body []byte, parse func([]byte)) bool {
	if len(body) > DefaultMaxXMLBody {
		return false // refused by size before anything reads it
	}
	parsed := false
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	if len(bytes.TrimSpace(body)) == 0 {
		parse(nil)
		parsed = true
	} else if checkXML(body, DefaultMaxXMLDepth) == nil {
		parse(body)
		parsed = true
	}
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if took > fuzzMaxTime {
		t.Fatalf("%d-byte body took %v", len(body), took)
	}
	if alloc, bound := after.TotalAlloc-before.TotalAlloc, uint64(fuzzAllocPerByte*len(body)+fuzzAllocFixed); alloc > bound {
		t.Fatalf("%d-byte body allocated %d bytes, bound %d", len(body), alloc, bound)
	}
	return parsed
}

// wellFormed fails unless doc is well-formed XML that uses only declared
// prefixes, as every answer must be.
func wellFormed(t *testing.T, what, doc string) {
	t.Helper()
	if err := checkXML([]byte(doc), 1<<30); err != nil {
		t.Fatalf("%s is not well-formed: %v\n%q", what, err, doc)
	}
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("%s does not parse: %v\n%q", what, err, doc)
			}
			return
		}
	}
}

const msOpen = `<D:multistatus xmlns:D="DAV:" xmlns:A="` + NSAttachd + `">`

func FuzzPropfindBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		max := DefaultMaxProps + 64
		var pf propfindReq
		var err error
		if !fuzzBounded(t, body, func(b []byte) { pf, err = parsePropfind(b, max) }) || err != nil {
			return
		}
		modes := 0
		for _, m := range []bool{pf.allprop, pf.propname, !pf.allprop && !pf.propname} {
			if m {
				modes++
			}
		}
		if modes != 1 || len(pf.names) > max {
			t.Fatalf("parsed to %+v", pf)
		}
		seen := map[xml.Name]bool{}
		for _, n := range pf.names {
			if seen[n] || n.Local == "" {
				t.Fatalf("names %v: repeated or empty %v", pf.names, n)
			}
			seen[n] = true
		}
		// The answer for a file with a dead property of each asked name is
		// well-formed.
		var dead []deadProp
		for _, n := range pf.names {
			dead = append(dead, deadProp{NS: n.Space, Name: n.Local, XML: "v"})
		}
		raw, err := json.Marshal(dead)
		if err != nil {
			t.Fatal(err)
		}
		pc := &propCtx{hrefOf: func(k string) string { return "/dav/" + k }, maxRawProps: 1 << 30}
		m := &multistatus{}
		r := resource{href: "/dav/f", key: "f", obj: store.Object{Key: "f", Props: raw}}
		pc.write(m, &r, pf)
		wellFormed(t, "the PROPFIND answer", msOpen+string(m.b)+"</D:multistatus>")
	})
}

func FuzzProppatchBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var ops []patchOp
		var err error
		if !fuzzBounded(t, body, func(b []byte) { ops, err = parseProppatch(b) }) || err != nil {
			return
		}
		h := &Handler{opts: Options{MaxProps: 4, MaxPropsBytes: 64}}
		s := newPropSet(nil)
		var out []byte
		for _, op := range ops {
			for _, p := range op.props {
				if p.Name == "" {
					t.Fatalf("a property without a name: %+v", p)
				}
				if op.remove && p.XML != "" {
					t.Fatalf("a removed property with a value: %+v", p)
				}
				// Each value stands alone: it declares what it uses.
				wellFormed(t, "a property value", "<v>"+p.XML+"</v>")
				out = appendDead(out, p)
				s.apply(p, op.remove)
			}
		}
		wellFormed(t, "the properties as PROPFIND writes them", `<D:prop xmlns:D="DAV:">`+string(out)+"</D:prop>")
		final := s.list()
		if len(final) != len(s.at) {
			t.Fatalf("%d properties listed, %d present", len(final), len(s.at))
		}
		full := h.overflow(final, s.setHere)
		var count int
		var size int64
		for _, p := range final {
			if !full[xml.Name{Space: p.NS, Local: p.Name}] {
				count++
				size += propSize(p)
			}
		}
		if full != nil && (count > h.opts.MaxProps || size > h.opts.MaxPropsBytes) {
			t.Fatalf("what fits (%d properties, %d bytes) is over the limits", count, size)
		}
	})
}

func FuzzLockBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var li lockInfo
		var err error
		parsed := fuzzBounded(t, body, func(b []byte) {
			if b != nil { // nil is a refresh: nothing to parse
				li, err = parseLockInfo(b)
			}
		})
		if !parsed || err != nil || len(bytes.TrimSpace(body)) == 0 {
			return
		}
		l := store.Lock{Token: "opaquelocktoken:x", Root: "f", Shared: li.shared, Owner: li.owner,
			Created: time.Unix(0, 0), Expires: time.Unix(60, 0)}
		b := appendActiveLock([]byte(`<D:lockdiscovery xmlns:D="DAV:">`), l, "/dav/f", time.Unix(0, 0))
		wellFormed(t, "the lockdiscovery", string(b)+"</D:lockdiscovery>")
	})
}
