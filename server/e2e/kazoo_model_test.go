package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// This file models the Kazoo side of the wire: documents, storage settings,
// the URL rules of docs/kazoo.md §2 and §4 and the bytes OTP httpc writes.
// The capture generator (capture_test.go) is its only user; tests replay the
// committed captures and never rebuild a request from this model.

// A member is one key of a JSON object, kept in document order because the
// fetch query string (docs/kazoo.md §4.3) follows document order.
type member struct {
	Key   string
	Value any // string, int, bool, object or []any
}

// An object is a JSON object in document order.
type object []member

// get returns the value stored under key.
func (o object) get(key string) (any, bool) {
	for _, m := range o {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// appendJSON appends the compact JSON text of v, as kz_json:encode writes it
// (UTF-8 kept raw, no HTML escaping).
func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case object:
		b = append(b, '{')
		for i, m := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, m.Key)
			b = append(b, ':')
			b = appendJSON(b, m.Value)
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case string:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			panic(err)
		}
		return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case bool:
		return strconv.AppendBool(b, v)
	}
	panic(fmt.Sprintf("appendJSON: unsupported %T", v))
}

// A kazooDoc is the CouchDB document an attachment belongs to.
type kazooDoc struct {
	DB        string // database name as Kazoo holds it, e.g. "account%2F4e%2F30%2F…-202004"
	AccountID string // pvt_account_id; "" means the doc has none
	ID        string
	Public    object // public fields in document order, without "id"
}

// publicWithID is kz_doc:public_fields: the public fields with "id" last.
func (d kazooDoc) publicWithID() object {
	o := append(object{}, d.Public...)
	return append(o, member{"id", d.ID})
}

// queryObject is what Kazoo ≥ 4.3.106 serialises into the fetch query string:
// the "metadata" object if the doc has one, else all public fields plus id
// (docs/kazoo.md §4.3).
func (d kazooDoc) queryObject() object {
	if md, ok := d.Public.get("metadata"); ok {
		if o, ok := md.(object); ok {
			return o
		}
	}
	return d.publicWithID()
}

// A urlField is one entry of a storage plan's field_list (docs/kazoo.md §2.4).
// Exactly one of Arg, Field, Group or Const is meaningful; a bare string in
// the plan is a Const.
type urlField struct {
	Arg   string // account_id, id, attachment or db
	Field string // a top-level public field of the doc
	Group []urlField
	Const string // inserted verbatim
}

// defaultFields is kz_att_util:default_format_url_fields (docs/kazoo.md §2.3).
var defaultFields = []urlField{{Arg: "account_id"}, {Field: "owner_id"}, {Arg: "id"}, {Arg: "attachment"}}

// storageSettings are the settings of one http attachment handler.
type storageSettings struct {
	URL            string
	FieldList      []urlField
	HasFieldList   bool    // field_list is present, even when empty
	FieldSeparator *string // nil means the default "/"
	Verb           string  // "PUT" or "POST", as httpc writes the method
	Multipart      bool    // send_multipart
	Base64         bool    // base64_encode_data
}

func (s storageSettings) fields() []urlField {
	if s.HasFieldList {
		return s.FieldList
	}
	return defaultFields
}

func (s storageSettings) separator() string {
	if s.FieldSeparator != nil {
		return *s.FieldSeparator
	}
	return "/"
}

// segment is the client segment kz_att_util:format_url builds for one
// attachment (docs/kazoo.md §2.4).
func (s storageSettings) segment(d kazooDoc, aname string) string {
	var vals []string
	for _, f := range s.fields() {
		if v, ok := evalField(f, d, aname); ok {
			vals = append(vals, v)
		}
	}
	return strings.Join(vals, s.separator())
}

// evalField evaluates one field; ok is false when the field yields nothing.
func evalField(f urlField, d kazooDoc, aname string) (string, bool) {
	switch {
	case f.Group != nil:
		var b strings.Builder
		for _, g := range f.Group {
			if v, ok := evalField(g, d, aname); ok {
				b.WriteString(v)
			}
		}
		return b.String(), true
	case f.Arg != "":
		var v string
		switch f.Arg {
		case "account_id":
			v = d.AccountID
			if v == "" {
				v = "unknown_account"
			}
		case "id":
			v = d.ID
		case "attachment":
			v = aname
		case "db":
			v = percentDecode(d.DB)
		default:
			panic("unknown arg " + f.Arg)
		}
		return httpURIEncode(v), true
	case f.Field != "":
		v, ok := d.publicWithID().get(f.Field)
		if !ok {
			return "", false
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		default:
			s = string(appendJSON(nil, v))
		}
		if s == "" {
			return "", false
		}
		return httpURIEncode(s), true
	default:
		return f.Const, true
	}
}

// httpURIEncode is OTP http_uri:encode as Kazoo uses it for arg and field
// values: only these bytes and space are escaped, everything else (UTF-8,
// control bytes, !$()*~) passes raw (docs/kazoo.md §2.4).
func httpURIEncode(s string) string {
	const reserved = ";:@&=+,/?#[]<>\"{}|\\'^% "
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(reserved, c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// percentDecode undoes %XX escapes and nothing else (kz_util:uri_decode).
func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// queryValue is kz_http_util:urlencode: A-Za-z0-9 . - ~ _ kept, space to
// '+', every other byte %XX in upper case.
func queryValue(v any) string {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case int:
		s = strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	default:
		panic(fmt.Sprintf("queryValue: unsupported %T", v))
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			b.WriteByte('+')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '-', c == '~', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// kazooQueryString is kz_http_util:json_to_querystring (docs/kazoo.md §4.3):
// keys raw, nested objects as key[sub]=v, arrays as key[]=v, and an empty
// object or array leaving an empty element between two '&'.
func kazooQueryString(o object) string {
	parts := make([]string, 0, len(o))
	for _, m := range o {
		parts = append(parts, queryPair(m.Key, m.Value))
	}
	return strings.Join(parts, "&")
}

func queryPair(key string, v any) string {
	switch v := v.(type) {
	case object:
		parts := make([]string, 0, len(v))
		for _, m := range v {
			parts = append(parts, queryPair(key+"["+m.Key+"]", m.Value))
		}
		return strings.Join(parts, "&")
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			parts = append(parts, key+"[]="+queryValue(e))
		}
		return strings.Join(parts, "&")
	default:
		return key + "=" + queryValue(v)
	}
}

// kazooURL is a URL split the way kz_http_util:urlsplit splits it. Its
// location is kept already rendered by urlunsplit, which is where Kazoo
// loses the ':' of "user:pass@" (see location).
type kazooURL struct {
	Scheme, Location, Path, Query, Fragment string
}

// splitKazooURL emulates kz_http_util:urlsplit/1 (Kazoo 4.3 and master).
func splitKazooURL(u string) kazooURL {
	var k kazooURL
	rest := u
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c == ':' {
			k.Scheme, rest = u[:i], u[i+1:]
			break
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			break
		}
	}
	if strings.HasPrefix(rest, "//") {
		k.Location, rest = location(rest[2:])
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		k.Path = rest[:i]
		if rest[i] == '#' {
			k.Fragment = rest[i+1:]
		} else {
			k.Query = rest[i+1:]
			if j := strings.IndexByte(k.Query, '#'); j >= 0 {
				k.Query, k.Fragment = k.Query[:j], k.Query[j+1:]
			}
		}
	} else {
		k.Path = rest
	}
	return k
}

// location emulates urlsplit_l and returns the location as urlunsplit
// renders it. At the first ':' it parses digits as a port; with none (a
// non-numeric password in "user:pass@host") the location is just "user" and
// "pass@host:port" slides into the path, so the ':' is lost on the way back.
func location(s string) (loc, rest string) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '/', '?', '#':
			return s[:i], s[i:]
		case '@':
			user := s[:i]
			r := s[i+1:]
			j := strings.IndexByte(r, ':')
			if j < 0 {
				panic("urlsplit_basic_auth crashes on " + s)
			}
			host, rest := location(r[j+1:])
			return user + "@" + r[:j] + ":" + host, rest
		case ':':
			host := s[:i]
			r := s[i+1:]
			n := 0
			for n < len(r) && r[n] >= '0' && r[n] <= '9' {
				n++
			}
			if n == 0 {
				return host, r
			}
			port, _ := strconv.Atoi(r[:n])
			return host + ":" + strconv.Itoa(port), r[n:]
		}
	}
	return s, ""
}

// String is kz_http_util:urlunsplit/1.
func (k kazooURL) String() string {
	var b strings.Builder
	if k.Scheme != "" {
		b.WriteString(k.Scheme + "://")
	}
	b.WriteString(k.Location + k.Path)
	if k.Query != "" {
		b.WriteString("?" + k.Query)
	}
	if k.Fragment != "" {
		b.WriteString("#" + k.Fragment)
	}
	return b.String()
}

// baseSeparator is kz_att_http:base_separator: "/" unless the URL already
// has a query string.
func baseSeparator(u string) string {
	if splitKazooURL(u).Query == "" {
		return "/"
	}
	return ""
}

// putURL is the URL Kazoo stores to (docs/kazoo.md §2.6).
func putURL(s storageSettings, d kazooDoc, aname string) string {
	base := strings.TrimRight(s.URL, "/")
	return base + baseSeparator(base) + s.segment(d, aname)
}

// fetchURL is the URL Kazoo ≥ 4.3.106 fetches from (docs/kazoo.md §4 and
// kz_att_http:attachment_url): the stored URL, the client segment again
// (computed from the settings in force at fetch time; nil means none, so the
// default fields) and the doc's query string joined to any existing query.
func fetchURL(stored string, hprops *storageSettings, d kazooDoc, aname string) string {
	var s storageSettings
	if hprops != nil {
		s = *hprops
	}
	base := strings.TrimRight(stored, "/")
	k := splitKazooURL(base + baseSeparator(base) + s.segment(d, aname))
	qs := kazooQueryString(d.queryObject())
	if k.Query == "" {
		k.Query = qs
	} else {
		k.Query += "&" + qs
	}
	return k.String()
}

// multipartBody is kz_att_http:build_multipart_body with
// kz_http_util:encode_multipart (docs/kazoo.md §1.1): body starting with
// CRLF, lowercase part headers, unquoted names, no CRLF after the close
// delimiter.
func multipartBody(boundary string, d kazooDoc, aname, contentType string, data []byte) []byte {
	var b bytes.Buffer
	part := func(name, ct string, body []byte) {
		b.WriteString("\r\n--" + boundary + "\r\n")
		b.WriteString("content-disposition: form-data; name=" + name + "\r\n")
		b.WriteString("content-type: " + ct + "\r\n\r\n")
		b.Write(body)
	}
	part(d.ID, "application/json", appendJSON(nil, d.publicWithID()))
	part(aname, contentType, data)
	b.WriteString("\r\n--" + boundary + "--")
	return b.Bytes()
}

// A wireRequest is one request as Kazoo's OTP 19 httpc puts it on the wire.
type wireRequest struct {
	Method      string // "PUT", "POST", "GET" (or "HEAD" for tests beyond Kazoo)
	URL         string // absolute URL as Kazoo built it
	ContentType string // stores only
	Body        []byte
	// StrayContentType adds the "content_type: <CT>" header Kazoo < 4.3.106
	// also sent, its header key being the atom content_type (docs/kazoo.md §0).
	StrayContentType bool
	// Extra header lines ("name: value"), for tests that go beyond Kazoo.
	Extra []string
}

// splitHTTPC splits an absolute URL the way OTP http_uri:parse does for
// httpc: the request-target is path plus query exactly as written, userinfo
// becomes Basic credentials (handle_user_info).
func splitHTTPC(u string) (target, userinfo, host string) {
	rest := u[strings.Index(u, "://")+3:]
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, target := rest[:end], rest[end:]
	if i := strings.IndexByte(authority, '@'); i >= 0 {
		userinfo, authority = authority[:i], authority[i+1:]
	}
	if target == "" || target[0] == '?' {
		target = "/" + target
	}
	return target, userinfo, authority
}

// head returns the request line and header block for a body of n bytes.
//
// Order and spelling follow OTP httpc: http_request:http_headers/1 folds the
// #http_request_h{} record fields into a list in reverse record order, then
// appends "other" headers; httpc sets te to "" and host for HTTP/1.1,
// connection defaults to keep-alive and content-length to "0" (so a GET
// carries "content-length: 0").
func (r wireRequest) head(n int64) []byte {
	target, userinfo, host := splitHTTPC(r.URL)
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", r.Method, target)
	if r.ContentType != "" {
		fmt.Fprintf(&b, "content-type: %s\r\n", r.ContentType)
	}
	fmt.Fprintf(&b, "content-length: %d\r\n", n)
	b.WriteString("te: \r\n")
	fmt.Fprintf(&b, "host: %s\r\n", host)
	if userinfo != "" {
		cred := userinfo
		if !strings.Contains(cred, ":") {
			cred += ":"
		}
		fmt.Fprintf(&b, "authorization: Basic %s\r\n", base64.StdEncoding.EncodeToString([]byte(cred)))
	}
	b.WriteString("connection: keep-alive\r\n")
	if r.StrayContentType {
		fmt.Fprintf(&b, "content_type: %s\r\n", r.ContentType)
	}
	for _, h := range r.Extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// bytes returns the whole request.
func (r wireRequest) bytes() []byte {
	return append(r.head(int64(len(r.Body))), r.Body...)
}
