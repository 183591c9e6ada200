package store

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/attachd/attachd/plugins/blob"
)

// ErrInvalidKey is returned for a path that cannot name an object: one that
// would escape the data directory in any encoding, or that no filesystem can hold.
var ErrInvalidKey = blob.ErrInvalidName

const (
	maxSegment = 255  // bytes of one escaped segment: NAME_MAX on every filesystem we run on
	maxKey     = 4096 // bytes of a whole key: PATH_MAX
)

// CanonicalPath turns an escaped URL path (http.Request.URL.EscapedPath) into
// a key. It is the only function that does so: Kazoo, WebDAV and permission
// checks all go through it, so that two spellings of one path can never be
// judged differently.
//
// The path is split on '/' before unescaping, because Kazoo puts %2F inside a
// single segment (docs/kazoo.md §5, the {arg:db} field). Empty segments are
// dropped. In the key, each segment is re-escaped minimally (see EscapeSegment),
// so a key is also a safe relative file path. A decoded segment that is "." or
// "..", or that holds a "." or ".." between slashes, a backslash or a NUL, is
// refused: no encoding of a parent reference gets through.
func CanonicalPath(escaped string) (string, error) {
	var b strings.Builder
	for _, raw := range strings.Split(escaped, "/") {
		if raw == "" {
			continue
		}
		seg, err := url.PathUnescape(raw)
		if err != nil {
			return "", fmt.Errorf("%w: bad escape in %q", ErrInvalidKey, raw)
		}
		if err := checkSegment(seg); err != nil {
			return "", err
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(EscapeSegment(seg))
	}
	return b.String(), checkLength(b.String())
}

// JoinKey appends decoded segments to key, escaping and checking each as
// CanonicalPath would.
func JoinKey(key string, segments ...string) (string, error) {
	for _, seg := range segments {
		if err := checkSegment(seg); err != nil {
			return "", err
		}
		if key != "" {
			key += "/"
		}
		key += EscapeSegment(seg)
	}
	return key, checkLength(key)
}

func checkSegment(seg string) error {
	if strings.ContainsAny(seg, "\\\x00") {
		return fmt.Errorf("%w: backslash or NUL in path", ErrInvalidKey)
	}
	for _, part := range strings.Split(seg, "/") {
		if part == "." || part == ".." {
			return fmt.Errorf("%w: dot segment in path", ErrInvalidKey)
		}
	}
	if seg == "" {
		return fmt.Errorf("%w: empty segment", ErrInvalidKey)
	}
	if len(EscapeSegment(seg)) > maxSegment {
		return fmt.Errorf("%w: path segment longer than %d bytes", ErrInvalidKey, maxSegment)
	}
	return nil
}

func checkLength(key string) error {
	if len(key) > maxKey {
		return fmt.Errorf("%w: path longer than %d bytes", ErrInvalidKey, maxKey)
	}
	return nil
}

// EscapeSegment escapes a decoded path segment for use in a key: '%', '/',
// control bytes and bytes that are not valid UTF-8 become %XX; everything else,
// including non-ASCII UTF-8, spaces and '+', stays as it is. The result is a
// valid file name and valid UTF-8, and UnescapeSegment reverses it.
func EscapeSegment(seg string) string {
	clean := true
	for i := 0; i < len(seg); i++ {
		if c := seg[i]; c == '%' || c == '/' || c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean {
		return seg
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(seg); {
		c := seg[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(seg[i:])
			if r != utf8.RuneError || size > 1 {
				b.WriteString(seg[i : i+size])
				i += size
				continue
			}
		}
		if c == '%' || c == '/' || c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
		i++
	}
	return b.String()
}

// UnescapeSegment returns the decoded form of one segment of a key.
func UnescapeSegment(seg string) string {
	if !strings.Contains(seg, "%") {
		return seg
	}
	s, err := url.PathUnescape(seg)
	if err != nil {
		return seg // keys are made by EscapeSegment; this cannot happen for them
	}
	return s
}

// Split returns the parent key ("" at the top) and the last segment of key.
func Split(key string) (parent, name string) {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return "", key
	}
	return key[:i], key[i+1:]
}

// Parents returns the proper prefixes of key on segment boundaries, longest first.
func Parents(key string) []string {
	var ps []string
	for i := len(key) - 1; i > 0; i-- {
		if key[i] == '/' {
			ps = append(ps, key[:i])
		}
	}
	return ps
}

// UnescapeKey returns key with every segment decoded, for messages and display.
func UnescapeKey(key string) string {
	out := ""
	for i, seg := range splitKey(key) {
		if i > 0 {
			out += "/"
		}
		out += UnescapeSegment(seg)
	}
	return out
}

func join(dir, key string) string {
	if key == "" {
		return dir
	}
	return dir + "/" + key
}

func splitKey(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, "/")
}
