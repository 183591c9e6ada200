package dav

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	nsDAV = "DAV:"
	nsXML = "http://www.w3.org/XML/1998/namespace"
)

// readXMLBody reads the XML body of a PROPFIND, PROPPATCH or LOCK, which is
// read whole to be parsed, and checks it (checkXML) before anything parses
// it for meaning. A body over Options.MaxXMLBody is refused with 413, as
// Apache's LimitXMLRequestBody does (x/net/webdav sets no limit:
// docs/webdav-clients.md §3.12). An empty body is nil.
func (q *request) readXMLBody() ([]byte, error) {
	max := q.h.opts.MaxXMLBody
	if q.r.ContentLength > max {
		return nil, fmt.Errorf("%w: XML body of %d bytes, the limit is %d", errTooLarge, q.r.ContentLength, max)
	}
	body, err := io.ReadAll(io.LimitReader(q.r.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("%w: XML body larger than %d bytes", errTooLarge, max)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if err := checkXML(body, q.h.opts.MaxXMLDepth); err != nil {
		return nil, err
	}
	return body, nil
}

// checkXML refuses a body that is not well-formed, one nested deeper than
// maxDepth elements, and one that uses a namespace prefix it never declares:
// encoding/xml would take such a prefix for a namespace name, and RFC 4918
// §8.3 with the XML Namespaces spec make it a client error (litmus
// props/propfind_invalid2).
//
// Its cost is linear in the body: each prefix is looked up in one map of the
// bindings in scope, and an end tag undoes only what its start tag bound.
// Walking a stack of per-element scopes instead made a 1 MB body of 95 000
// nested prefixed elements cost seconds of CPU. The depth bound keeps the
// later parses (encoding/xml's Token keeps a stack per open element) and the
// values they build small as well.
func checkXML(body []byte, maxDepth int) error {
	type binding struct {
		prefix     string
		was, wasIn bool // the binding it shadows, and whether there was one
	}
	bound := map[string]bool{} // prefix → bound to a non-empty namespace name
	var undo []binding         // the bindings made by the open elements, in order
	var open []int             // len(undo) when each open element started
	declared := func(p string) bool { return p == "xml" || p == "xmlns" || bound[p] }
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		t, err := d.RawToken()
		if err == io.EOF {
			if len(open) != 0 {
				return fmt.Errorf("%w: malformed XML: %d elements left open", errBadRequest, len(open))
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: malformed XML: %v", errBadRequest, err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			if len(open) == maxDepth {
				return fmt.Errorf("%w: XML nested deeper than %d elements", errBadRequest, maxDepth)
			}
			open = append(open, len(undo))
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" {
					was, wasIn := bound[a.Name.Local]
					undo = append(undo, binding{a.Name.Local, was, wasIn})
					bound[a.Name.Local] = a.Value != "" // xmlns:p="" unbinds (Namespaces 1.1)
				}
			}
			if t.Name.Space != "" && !declared(t.Name.Space) {
				return fmt.Errorf("%w: undeclared namespace prefix %q", errBadRequest, t.Name.Space)
			}
			if !localName(t.Name.Local) {
				return fmt.Errorf("%w: %q is not an XML name after its prefix", errBadRequest, t.Name.Local)
			}
			for _, a := range t.Attr {
				if a.Name.Space != "" && a.Name.Space != "xmlns" && !declared(a.Name.Space) {
					return fmt.Errorf("%w: undeclared namespace prefix %q", errBadRequest, a.Name.Space)
				}
				if a.Name.Space != "xmlns" && !localName(a.Name.Local) {
					return fmt.Errorf("%w: %q is not an XML name after its prefix", errBadRequest, a.Name.Local)
				}
			}
		case xml.EndElement:
			if len(open) == 0 {
				return fmt.Errorf("%w: malformed XML: unexpected end tag", errBadRequest)
			}
			mark := open[len(open)-1]
			open = open[:len(open)-1]
			for i := len(undo) - 1; i >= mark; i-- {
				if b := undo[i]; b.wasIn {
					bound[b.prefix] = b.was
				} else {
					delete(bound, b.prefix)
				}
			}
			undo = undo[:mark]
		}
	}
}

// localName reports whether s, the part of a name after its prefix, is a
// name on its own. The decoder checks "A:0" as a whole, but property and
// element names are written back without their prefix, and "<0>" would
// make every later answer naming them unreadable. Stricter than XML
// (a non-ASCII start must be a letter, not a modifier letter): refusing a
// rare name is safe, writing a malformed one is not.
func localName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z':
		case i > 0 && (r == '-' || r == '.' || '0' <= r && r <= '9'):
		case r >= utf8.RuneSelf && (i > 0 || unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Lo)):
			// The decoder has checked the rest against XML's name characters.
		default:
			return false
		}
	}
	return s != ""
}

// root returns the decoder positioned after the document element, and that element.
func root(body []byte) (*xml.Decoder, xml.StartElement, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		t, err := d.Token()
		if err != nil {
			return nil, xml.StartElement{}, fmt.Errorf("%w: malformed XML: %v", errBadRequest, err)
		}
		if se, ok := t.(xml.StartElement); ok {
			return d, se, nil
		}
	}
}

// children calls fn for each child element of the element just opened; fn
// must consume the child (d.Skip, or parse it to its end).
func children(d *xml.Decoder, fn func(xml.StartElement) error) error {
	for {
		t, err := d.Token()
		if err != nil {
			return fmt.Errorf("%w: malformed XML: %v", errBadRequest, err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			if err := fn(t); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

// propfindReq is a parsed PROPFIND body (RFC 4918 §14.20).
type propfindReq struct {
	allprop  bool
	propname bool
	names    []xml.Name // <prop> or <include>
}

// parsePropfind parses a PROPFIND body naming at most maxNames distinct
// properties. Each name costs a lookup and, when absent, an element in the
// answer for every resource listed, so a 1 MB body of names would multiply
// a Depth 1 answer by the size of the folder; no resource has that many.
func parsePropfind(body []byte, maxNames int) (propfindReq, error) {
	if body == nil {
		return propfindReq{allprop: true}, nil // RFC 4918 §9.1: no body means allprop
	}
	d, se, err := root(body)
	if err != nil {
		return propfindReq{}, err
	}
	if se.Name != (xml.Name{Space: nsDAV, Local: "propfind"}) {
		return propfindReq{}, fmt.Errorf("%w: want a DAV:propfind body", errBadRequest)
	}
	var pf propfindReq
	var sawProp bool
	seen := map[xml.Name]bool{}
	err = children(d, func(c xml.StartElement) error {
		if c.Name.Space != nsDAV {
			return d.Skip()
		}
		switch c.Name.Local {
		case "allprop":
			pf.allprop = true
			return d.Skip()
		case "propname":
			pf.propname = true
			return d.Skip()
		case "prop", "include":
			sawProp = sawProp || c.Name.Local == "prop"
			return children(d, func(p xml.StartElement) error {
				if !seen[p.Name] {
					seen[p.Name] = true
					if len(pf.names) == maxNames {
						return fmt.Errorf("%w: a propfind names more than %d properties", errBadRequest, maxNames)
					}
					pf.names = append(pf.names, p.Name)
				}
				return d.Skip()
			})
		}
		return d.Skip()
	})
	if err != nil {
		return pf, err
	}
	n := 0
	for _, b := range []bool{pf.allprop, pf.propname, sawProp} {
		if b {
			n++
		}
	}
	if n != 1 {
		return pf, fmt.Errorf("%w: a propfind holds exactly one of allprop, propname and prop", errBadRequest)
	}
	return pf, nil
}

// deadProp is a property set by a client, kept as given.
type deadProp struct {
	NS   string `json:"ns"`
	Name string `json:"name"`
	Lang string `json:"lang,omitempty"`
	XML  string `json:"xml,omitempty"` // the value: self-contained XML (see canonicalInner)
}

// patchOp is one <set> or <remove> of a PROPPATCH, in document order.
type patchOp struct {
	remove bool
	props  []deadProp
}

func parseProppatch(body []byte) ([]patchOp, error) {
	if body == nil {
		return nil, fmt.Errorf("%w: PROPPATCH needs a body", errBadRequest)
	}
	d, se, err := root(body)
	if err != nil {
		return nil, err
	}
	if se.Name != (xml.Name{Space: nsDAV, Local: "propertyupdate"}) {
		return nil, fmt.Errorf("%w: want a DAV:propertyupdate body", errBadRequest)
	}
	var ops []patchOp
	err = children(d, func(c xml.StartElement) error {
		if c.Name.Space != nsDAV || (c.Name.Local != "set" && c.Name.Local != "remove") {
			return d.Skip()
		}
		op := patchOp{remove: c.Name.Local == "remove"}
		sawProp := false
		err := children(d, func(p xml.StartElement) error {
			if p.Name != (xml.Name{Space: nsDAV, Local: "prop"}) {
				return d.Skip()
			}
			sawProp = true
			return children(d, func(v xml.StartElement) error {
				dp := deadProp{NS: v.Name.Space, Name: v.Name.Local}
				for _, a := range v.Attr {
					if a.Name == (xml.Name{Space: nsXML, Local: "lang"}) {
						dp.Lang = a.Value
					}
				}
				inner, err := canonicalInner(d)
				if err != nil {
					return err
				}
				if !op.remove {
					dp.XML = inner
				}
				op.props = append(op.props, dp)
				return nil
			})
		})
		if err != nil {
			return err
		}
		if !sawProp {
			// As Apache: a set or remove holds a prop; an empty prop, or a
			// propertyupdate with nothing in it, changes nothing and is 207.
			return fmt.Errorf("%w: %s without a prop element", errBadRequest, c.Name.Local)
		}
		ops = append(ops, op)
		return nil
	})
	return ops, err
}

// canonicalInner consumes the content of the element just opened, up to and
// including its end tag, and returns it as XML that needs no declaration from
// its context: every element carries its own default-namespace declaration
// and namespaced attributes get local prefixes. A property value or a lock
// owner may use prefixes declared anywhere up the client's document; echoed
// raw, they would come back undeclared (litmus props/propvalnspace).
func canonicalInner(d *xml.Decoder) (string, error) {
	var b strings.Builder
	depth := 0
	for {
		t, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("%w: malformed XML: %v", errBadRequest, err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			depth++
			b.WriteByte('<')
			b.WriteString(t.Name.Local)
			b.WriteString(` xmlns="`)
			xml.EscapeText(&b, []byte(t.Name.Space))
			b.WriteByte('"')
			n := 0
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns"):
					continue
				case a.Name.Space == nsXML:
					b.WriteString(" xml:" + a.Name.Local + `="`)
				case a.Name.Space != "":
					n++
					p := fmt.Sprintf("a%d", n)
					b.WriteString(" xmlns:" + p + `="`)
					xml.EscapeText(&b, []byte(a.Name.Space))
					b.WriteString(`" ` + p + ":" + a.Name.Local + `="`)
				default:
					b.WriteString(" " + a.Name.Local + `="`)
				}
				xml.EscapeText(&b, []byte(a.Value))
				b.WriteByte('"')
			}
			b.WriteByte('>')
		case xml.EndElement:
			if depth == 0 {
				return b.String(), nil
			}
			depth--
			b.WriteString("</" + t.Name.Local + ">")
		case xml.CharData:
			xml.EscapeText(&b, t)
		}
	}
}

// lockInfo is a parsed LOCK body (RFC 4918 §14.11).
type lockInfo struct {
	shared bool
	owner  string // canonical XML of the owner element's content
}

func parseLockInfo(body []byte) (lockInfo, error) {
	var li lockInfo
	d, se, err := root(body)
	if err != nil {
		return li, err
	}
	if se.Name != (xml.Name{Space: nsDAV, Local: "lockinfo"}) {
		return li, fmt.Errorf("%w: want a DAV:lockinfo body", errBadRequest)
	}
	var scope, write bool
	err = children(d, func(c xml.StartElement) error {
		if c.Name.Space != nsDAV {
			return d.Skip()
		}
		switch c.Name.Local {
		case "lockscope":
			return children(d, func(s xml.StartElement) error {
				if s.Name.Space == nsDAV && (s.Name.Local == "shared" || s.Name.Local == "exclusive") {
					scope, li.shared = true, s.Name.Local == "shared"
				}
				return d.Skip()
			})
		case "locktype":
			return children(d, func(s xml.StartElement) error {
				write = write || s.Name == xml.Name{Space: nsDAV, Local: "write"}
				return d.Skip()
			})
		case "owner":
			li.owner, err = canonicalInner(d)
			return err
		}
		return d.Skip()
	})
	if err != nil {
		return li, err
	}
	if !scope || !write {
		return li, fmt.Errorf("%w: lockinfo needs a lockscope and a write locktype", errBadRequest)
	}
	return li, nil
}
