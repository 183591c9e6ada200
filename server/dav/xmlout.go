package dav

import (
	"bufio"
	"encoding/xml"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// NSAttachd is the XML namespace of attachd's own live properties: the Kazoo
// metadata of each object.
const NSAttachd = "https://github.com/attachd/attachd/ns"

// pnLegalHold is the one property of attachd's namespace a client sets: a
// dead property whose presence on an object, or on a folder above it, keeps
// the object from retention (package retention, prophold.go; docs/retention.md).
var pnLegalHold = xml.Name{Space: NSAttachd, Local: "legal-hold"}

// multistatus streams a 207 response (RFC 4918 §13) as it is built: each
// <response> is appended to a small buffer and written out, so memory does
// not grow with the number of entries.
type multistatus struct {
	w       http.ResponseWriter
	bw      *bufio.Writer
	b       []byte
	started bool
}

func newMultistatus(w http.ResponseWriter) *multistatus {
	return &multistatus{w: w, b: make([]byte, 0, 4096)}
}

func (m *multistatus) start() {
	if m.started {
		return
	}
	m.started = true
	m.w.Header().Set("Content-Type", xmlContentType)
	m.w.WriteHeader(http.StatusMultiStatus)
	m.bw = bufio.NewWriterSize(m.w, 64<<10)
	m.bw.WriteString(xmlHeader + `<D:multistatus xmlns:D="DAV:" xmlns:A="` + NSAttachd + `">` + "\n")
}

// flush writes out what has been appended since the last flush.
func (m *multistatus) flush() error {
	m.start()
	_, err := m.bw.Write(m.b)
	m.b = m.b[:0]
	return err
}

func (m *multistatus) close() error {
	m.start()
	m.b = append(m.b, "</D:multistatus>\n"...)
	if err := m.flush(); err != nil {
		return err
	}
	return m.bw.Flush()
}

func appendStatus(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	return append(b, http.StatusText(code)...)
}

// appendEscaped appends s as XML character data. Quotes are left alone:
// they need no escaping in text, and every ETag has two.
func appendEscaped(b []byte, s string) []byte { return appendXML(b, s, false) }

// appendAttr appends s as the value of a double-quoted attribute.
func appendAttr(b []byte, s string) []byte { return appendXML(b, s, true) }

func appendXML(b []byte, s string, attr bool) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch c := s[i]; c {
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '&':
			esc = "&amp;"
		case '"':
			if !attr {
				continue
			}
			esc = "&#34;"
		default:
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				esc = "\uFFFD" // not representable in XML 1.0
			} else if c >= utf8.RuneSelf {
				if r, size := utf8.DecodeRuneInString(s[i:]); r == utf8.RuneError && size == 1 {
					esc = "\uFFFD"
				} else {
					i += size - 1
					continue
				}
			} else {
				continue
			}
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	return append(b, s[start:]...)
}

func escapeString(s string) string { return string(appendEscaped(nil, s)) }
