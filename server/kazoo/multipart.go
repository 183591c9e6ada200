package kazoo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrMalformed is wrapped by every error that reports a multipart body breaking the
// multipart syntax. Errors of the underlying reader (a dropped connection, a short
// body) are never wrapped in it, so a caller can answer 400 for the one and treat the
// other as a failed transfer.
var ErrMalformed = errors.New("malformed multipart body")

const (
	multipartBufSize = 64 << 10 // bounds the memory of one MultipartReader
	maxHeaderBytes   = 16 << 10 // per part, line ends included
	maxParts         = 64       // Kazoo sends 2 (contract §1.1)
	maxBoundaryLen   = 256      // RFC 2046 allows 70; Kazoo uses 64 (contract §1.1)
	maxPadding       = 256      // transport padding accepted after a delimiter
)

var errMissingBlankLine = fmt.Errorf("%w: missing blank line after part headers", ErrMalformed)

// errPartClosed is returned by Read on a part that NextPart has moved past.
var errPartClosed = errors.New("kazoo: multipart part read after NextPart")

// BoundaryFromContentType returns the boundary parameter of a multipart Content-Type,
// leniently: the boundary may be quoted or not, parameters may come in any order, and
// the media type "multipart/form-data" or "multipart/mixed" is matched without regard
// to case. ok is false when the type is not one of those two or the boundary is
// absent, empty, longer than 256 bytes or contains CR or LF.
//
// Kazoo sends an unquoted 64-character base64url boundary (contract §1.1); Kazoo
// 4.3.17–4.3.20 sent "multipart/mixed" with no boundary at all (contract §0), which
// gives ok=false.
func BoundaryFromContentType(contentType string) (boundary string, ok bool) {
	typ, params := parseParams(contentType)
	if typ != "multipart/form-data" && typ != "multipart/mixed" {
		return "", false
	}
	b, ok := lookupParam(params, "boundary")
	if !ok || !validBoundary(b) {
		return "", false
	}
	return b, true
}

// validBoundary reports whether b can delimit parts. Besides its length, it must not
// contain CR or LF: the body scanner relies on a delimiter holding CR only as its
// first byte.
func validBoundary(b string) bool {
	return len(b) > 0 && len(b) <= maxBoundaryLen && !strings.ContainsAny(b, "\r\n")
}

// A MultipartReader reads the parts of a multipart body one after another, streaming
// each part's body. It holds no more than a fixed 64 KiB buffer, whatever the size of
// the parts.
//
// It accepts the layout Kazoo sends (contract §1.1) as well as that of other senders:
// the body may start with CRLF, with the first delimiter or with a preamble; part
// header names may have any case and unquoted parameter values; the close delimiter
// may be the last bytes of the body or be followed by CRLF and an epilogue. Line
// ends are CRLF, except that part header lines may also end in a bare LF. A part's
// header lines may take at most 16 KiB and a body may hold at most 64 parts.
type MultipartReader struct {
	br    *bufio.Reader
	delim []byte // CRLF "--" boundary: a delimiter line starts with it (RFC 2046 §5.1.1)
	bad   error  // the boundary itself is unusable

	// What is known of the bytes buffered in br, from its read position on.
	safe     int  // leading bytes known to belong to the current body (or preamble)
	atDelim  bool // a delimiter line starts right after the safe bytes
	delimLen int  // length of that delimiter line: padding and CRLF, or the closing "--"
	closing  bool // that delimiter is the close delimiter

	eof  bool  // the underlying reader returned io.EOF
	rerr error // the underlying reader failed; reported as-is once the buffer is used up

	err   error // sticky result of NextPart once parsing has ended or failed
	part  *Part // the part whose body is being read
	parts int
}

// NewMultipartReader returns a MultipartReader reading a multipart body from r, whose
// parts are delimited by boundary (as returned by BoundaryFromContentType).
func NewMultipartReader(r io.Reader, boundary string) *MultipartReader {
	m := &MultipartReader{
		// Kazoo's body starts with CRLF before the first delimiter (contract §1.1), other
		// senders start with "--boundary" or with a preamble. Reading one extra CRLF first
		// turns all three into a preamble that ends at the first CRLF "--boundary", which
		// the body scanner finds like any other delimiter.
		br:    bufio.NewReaderSize(io.MultiReader(strings.NewReader("\r\n"), r), multipartBufSize),
		delim: []byte("\r\n--" + boundary),
	}
	if !validBoundary(boundary) {
		m.bad = fmt.Errorf("%w: invalid boundary %q", ErrMalformed, clip(boundary))
	}
	return m
}

// A Part is one part of a multipart body. Its body is read with Read (or WriteTo) and
// is only readable until the next call to NextPart.
type Part struct {
	// Header holds the part's header fields under lower-cased names, values trimmed of
	// surrounding blanks. Folded lines are joined with one space; of repeated fields
	// the first is kept.
	Header map[string]string
	// Name is the name parameter of the Content-Disposition field, quoted or not, or
	// "" if there is none. Kazoo sends it unquoted, and it may contain spaces,
	// parentheses, commas, '/' and '=' (contract §5 "Multipart parsing"), so the
	// value runs to the next ';' that starts another parameter, or to the end.
	Name string
	// ContentType is the part's Content-Type field, or "" if it has none.
	ContentType string

	mr   *MultipartReader
	done bool // the body has been read to its end
}

// NextPart returns the next part of the body, discarding what is left unread of the
// previous part's body. It returns io.EOF after the close delimiter. Errors for a body
// breaking the multipart syntax wrap ErrMalformed; errors of the underlying reader are
// returned as they are. Once NextPart has returned an error it returns the same error.
func (m *MultipartReader) NextPart() (*Part, error) {
	if m.err != nil {
		return nil, m.err
	}
	p, err := m.nextPart()
	if err != nil {
		m.err = err
	}
	return p, err
}

func (m *MultipartReader) nextPart() (*Part, error) {
	if m.bad != nil {
		return nil, m.bad
	}
	m.part = nil
	for { // skip the rest of the previous body, or the preamble
		if err := m.advance(); err != nil {
			return nil, err
		}
		if m.safe == 0 {
			break
		}
		m.discard(m.safe)
	}
	m.discard(m.delimLen + len(m.delim))
	m.atDelim = false
	if m.closing {
		// Kazoo sends nothing after the close delimiter (contract §1.1); anything else
		// that follows is an epilogue and is left unread.
		return nil, io.EOF
	}
	if m.parts == maxParts {
		return nil, fmt.Errorf("%w: more than %d parts", ErrMalformed, maxParts)
	}
	m.parts++
	h, err := m.readHeader()
	if err != nil {
		return nil, err
	}
	_, params := parseParams(h["content-disposition"])
	name, _ := lookupParam(params, "name")
	p := &Part{Header: h, Name: name, ContentType: h["content-type"], mr: m}
	m.part = p
	return p, nil
}

// discard drops n buffered bytes, which the caller knows to be buffered.
func (m *MultipartReader) discard(n int) {
	m.br.Discard(n)
	m.safe = max(m.safe-n, 0)
}

// Read reads the part's body; it returns io.EOF at the delimiter that ends it.
func (p *Part) Read(b []byte) (int, error) {
	if err := p.ready(); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	m := p.mr
	if err := m.advance(); err != nil {
		m.err = err
		return 0, err
	}
	if m.safe == 0 {
		p.done = true
		return 0, io.EOF
	}
	n, _ := m.br.Read(b[:min(len(b), m.safe)]) // all buffered: no read, no error
	m.safe -= n
	return n, nil
}

// WriteTo writes the rest of the part's body to w straight from the reader's buffer,
// saving io.Copy a copy per byte.
func (p *Part) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := p.ready(); err != nil {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
		m := p.mr
		if err := m.advance(); err != nil {
			m.err = err
			return total, err
		}
		if m.safe == 0 {
			p.done = true
			return total, nil
		}
		buf, _ := m.br.Peek(m.safe) // all buffered: no read, no error
		n, err := w.Write(buf)
		m.discard(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if n < len(buf) {
			return total, io.ErrShortWrite
		}
	}
}

// ready reports why the part's body cannot be read further, if it cannot.
func (p *Part) ready() error {
	switch {
	case p.done:
		return io.EOF
	case p.mr == nil || p.mr.part != p:
		return errPartClosed
	case p.mr.err != nil:
		return p.mr.err
	}
	return nil
}

// advance makes sure that the buffer starts with body bytes (m.safe > 0) or with a
// delimiter (m.atDelim), reading more input as needed. It fails if the input ends
// before the next delimiter.
func (m *MultipartReader) advance() error {
	for m.safe == 0 && !m.atDelim {
		final := m.eof || m.rerr != nil
		buf, _ := m.br.Peek(m.br.Buffered())
		m.scan(buf, final)
		if m.safe > 0 || m.atDelim {
			return nil
		}
		if final {
			if m.rerr != nil {
				return m.rerr
			}
			return fmt.Errorf("%w: missing close delimiter", ErrMalformed)
		}
		m.fill()
	}
	return nil
}

// fill reads at least one more byte into the buffer, or records why it cannot.
func (m *MultipartReader) fill() {
	_, err := m.br.Peek(m.br.Buffered() + 1)
	switch {
	case err == nil:
	case err == io.EOF:
		m.eof = true
	case errors.Is(err, bufio.ErrBufferFull):
		// scan always decides on a full buffer, since a delimiter line with its
		// lookahead is far shorter than the buffer; fail rather than spin.
		m.rerr = errors.New("kazoo: multipart scanner stuck on a full buffer")
	default:
		m.rerr = err
	}
}

// scan sets m.safe, m.atDelim, m.delimLen and m.closing for buf, the buffered bytes.
// final means that no more input will come.
func (m *MultipartReader) scan(buf []byte, final bool) {
	d := m.delim
	for off := 0; ; {
		i := bytes.Index(buf[off:], d)
		if i < 0 {
			m.safe = len(buf)
			if !final {
				m.safe -= partialDelim(buf, d)
			}
			return
		}
		i += off
		n, closing, res := delimLine(buf[i+len(d):], final)
		switch res {
		case lineNeedMore:
			m.safe = i
			return
		case lineDelim:
			m.safe, m.atDelim, m.delimLen, m.closing = i, true, n, closing
			return
		}
		// Only a boundary followed by "--", or by padding and CRLF, ends a body;
		// "\r\n--B" followed by anything else is body data.
		off = i + 1
	}
}

// partialDelim returns the length of the longest suffix of buf that is a proper prefix
// of the delimiter d, i.e. the bytes that must wait for more input. A suffix must start
// with the CR that only the first byte of d holds (see validBoundary).
func partialDelim(buf, d []byte) int {
	start := max(len(buf)-len(d)+1, 0)
	j := bytes.LastIndexByte(buf[start:], '\r')
	if j < 0 {
		return 0
	}
	j += start
	if bytes.HasPrefix(d, buf[j:]) {
		return len(buf) - j
	}
	return 0
}

// Results of delimLine.
const (
	lineNotDelim = iota
	lineNeedMore
	lineDelim
)

// delimLine looks at rest, the bytes that follow CRLF "--" boundary, and tells whether
// they complete a delimiter line: "--" for the close delimiter, or transport padding
// (at most maxPadding blanks) and CRLF. n is the length of that completion.
func delimLine(rest []byte, final bool) (n int, closing bool, res int) {
	more := lineNeedMore
	if final {
		more = lineNotDelim
	}
	if len(rest) == 0 {
		return 0, false, more
	}
	if rest[0] == '-' {
		switch {
		case len(rest) < 2:
			return 0, false, more
		case rest[1] == '-':
			return 2, true, lineDelim
		}
		return 0, false, lineNotDelim
	}
	j := 0
	for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t') {
		if j++; j > maxPadding {
			return 0, false, lineNotDelim
		}
	}
	switch {
	case j < len(rest) && rest[j] != '\r':
		return 0, false, lineNotDelim
	case j+2 > len(rest):
		return 0, false, more
	case rest[j+1] == '\n':
		return j + 2, false, lineDelim
	}
	return 0, false, lineNotDelim
}

// readHeader reads the header lines of a part up to and including the blank line that
// ends them.
func (m *MultipartReader) readHeader() (map[string]string, error) {
	type field struct{ name, value string }
	var fields []field
	size := 0
	for {
		line, err := m.readLine(maxHeaderBytes - size)
		if err != nil {
			return nil, err
		}
		size += len(line)
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			break
		}
		if m.isDelimLine(line) {
			return nil, errMissingBlankLine
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			return nil, fmt.Errorf("%w: bad header line %q", ErrMalformed, clip(string(line)))
		}
		if line[0] == ' ' || line[0] == '\t' { // obsolete line folding (RFC 5322 §3.2.2)
			if len(fields) == 0 {
				return nil, fmt.Errorf("%w: bad header line %q", ErrMalformed, clip(string(line)))
			}
			f := &fields[len(fields)-1]
			switch v := string(bytes.Trim(line, " \t")); {
			case v == "":
			case f.value == "":
				f.value = v
			default:
				f.value += " " + v
			}
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		name = bytes.TrimRight(name, " \t")
		if !ok || !validFieldName(name) {
			return nil, fmt.Errorf("%w: bad header line %q", ErrMalformed, clip(string(line)))
		}
		fields = append(fields, field{strings.ToLower(string(name)), string(bytes.Trim(value, " \t"))})
	}
	h := make(map[string]string, len(fields))
	for _, f := range fields {
		if _, dup := h[f.name]; !dup {
			h[f.name] = f.value
		}
	}
	return h, nil
}

// readLine returns the next line, LF included, if it is at most limit bytes long. The
// line is only valid until the next read.
func (m *MultipartReader) readLine(limit int) ([]byte, error) {
	for from := 0; ; {
		buf, _ := m.br.Peek(m.br.Buffered())
		if i := bytes.IndexByte(buf[from:], '\n'); i >= 0 && from+i < limit {
			line, _ := m.br.ReadSlice('\n') // all buffered: no read, no error
			return line, nil
		}
		from = len(buf) // with a slow sender, do not search the same bytes again
		if len(buf) >= limit {
			return nil, fmt.Errorf("%w: part headers over %d bytes", ErrMalformed, maxHeaderBytes)
		}
		if m.rerr != nil {
			return nil, m.rerr
		}
		if m.eof {
			if m.isDelimLine(bytes.TrimRight(buf, "\r")) { // Kazoo's close delimiter ends the body
				return nil, errMissingBlankLine
			}
			return nil, fmt.Errorf("%w: truncated part headers", ErrMalformed)
		}
		m.fill()
	}
}

// isDelimLine reports whether a header line is in fact a delimiter line, i.e. the part
// ended before its headers did.
func (m *MultipartReader) isDelimLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, m.delim[2:])
	return ok && (bytes.HasPrefix(rest, []byte("--")) || len(bytes.Trim(rest, " \t")) == 0)
}

// validFieldName reports whether name is a non-empty header field name: printable
// US-ASCII without ':' (RFC 5322 §3.6.8).
func validFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// parseParams splits a header value of the form `type; key=value; ...` into its
// lower-cased, trimmed first element and its parameters, leniently.
//
// A quoted value is a quoted-string with backslash escapes. An unquoted value runs to
// the next ';' that is followed by `key=`, or to the end: Kazoo does not quote part
// names, which may hold spaces, parentheses, commas, '/', '=' and ';' (contract §1.1,
// §5), whereas strict parsers such as mime.ParseMediaType reject them.
func parseParams(s string) (typ string, params [][2]string) {
	typ, rest, _ := strings.Cut(s, ";")
	typ = strings.ToLower(strings.Trim(typ, " \t"))
	for rest != "" {
		var key string
		var ok bool
		key, rest, ok = cutParamKey(rest)
		if !ok {
			continue
		}
		var value string
		value, rest = cutParamValue(strings.TrimLeft(rest, " \t"))
		params = append(params, [2]string{key, value})
	}
	return typ, params
}

// cutParamKey splits `key=rest` and lower-cases the key. When a ';' comes before any
// '=', the text up to it is not a parameter: ok is false and rest follows the ';'.
func cutParamKey(s string) (key, rest string, ok bool) {
	i := strings.IndexAny(s, "=;")
	if i < 0 {
		return "", "", false
	}
	if s[i] == ';' {
		return "", s[i+1:], false
	}
	return strings.ToLower(strings.Trim(s[:i], " \t")), s[i+1:], true
}

// cutParamValue splits the value at the start of s from the parameters after it.
func cutParamValue(s string) (value, rest string) {
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		// Anything between the closing quote and the next ';' is ignored.
		if j := strings.IndexByte(s[min(i, len(s)):], ';'); j >= 0 {
			return b.String(), s[i+j+1:]
		}
		return b.String(), ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] == ';' && startsParam(s[i+1:]) {
			return strings.Trim(s[:i], " \t"), s[i+1:]
		}
	}
	return strings.Trim(s, " \t"), ""
}

// startsParam reports whether s starts with blanks, a token and '='.
func startsParam(s string) bool {
	s = strings.TrimLeft(s, " \t")
	i := 0
	for i < len(s) && isTokenByte(s[i]) {
		i++
	}
	return i > 0 && strings.HasPrefix(strings.TrimLeft(s[i:], " \t"), "=")
}

// isTokenByte reports whether c may appear in an RFC 2045 token.
func isTokenByte(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
}

// lookupParam returns the value of the first parameter named key (lower case).
func lookupParam(params [][2]string, key string) (string, bool) {
	for _, p := range params {
		if p[0] == key {
			return p[1], true
		}
	}
	return "", false
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
