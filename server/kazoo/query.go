package kazoo

import "strings"

// A Param is one key=value pair of a query string, decoded.
type Param struct{ Key, Value string }

// maxQueryDepth bounds the bracket segments of a key that QueryToJSON nests;
// a key with more is kept as a plain key.
const maxQueryDepth = 32

// ParseQuery splits a raw query (everything after the first '?', which may itself
// contain '?' and '/') into its parameters, in order, leniently, as Kazoo's
// json_to_querystring writes it (contract §4 step 3, §5 "Query parsing"): it splits on
// '&' only (never ';'), skips empty pieces ("&&", a leading or trailing '&'), splits each
// piece at its first '=' (a piece without '=' is a key with value ""), turns '+' into a
// space and decodes %XX in keys and values. An invalid %-escape is kept literally.
// Unlike url.ParseQuery it never fails.
func ParseQuery(raw string) []Param {
	var ps []Param
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		ps = append(ps, Param{Key: unescapeQuery(k), Value: unescapeQuery(v)})
	}
	return ps
}

// unescapeQuery decodes '+' and %XX, keeping malformed escapes as they are.
func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// QueryToJSON turns params into an object that encoding/json can marshal, undoing
// Kazoo's json_to_querystring (contract §4 step 3): `a[b][c]=v` nests objects,
// `k[]=v` appends to an array, a plain key repeated keeps its last value, and values
// stay strings. It never fails: a key whose shape conflicts with an earlier one (as in
// `a=1&a[b]=2`) replaces it. A key that does not have the shape `name[seg]...` with a
// non-empty name, or that has more than 32 segments, is taken literally.
func QueryToJSON(ps []Param) map[string]any {
	obj := make(map[string]any)
	for _, p := range ps {
		name, path := splitQueryKey(p.Key)
		obj[name] = assignPath(obj[name], path, p.Value)
	}
	return obj
}

// splitQueryKey splits `name[a][]` into "name" and ["a", ""].
func splitQueryKey(key string) (name string, path []string) {
	i := strings.IndexByte(key, '[')
	if i <= 0 {
		return key, nil
	}
	for rest := key[i:]; rest != ""; {
		j := strings.IndexByte(rest, ']')
		if rest[0] != '[' || j < 0 || len(path) == maxQueryDepth {
			return key, nil
		}
		path = append(path, rest[1:j])
		rest = rest[j+1:]
	}
	return key[:i], path
}

// assignPath returns cur with value stored at path: an empty segment appends to an
// array, any other selects an object member. Whatever cur holds that does not fit the
// path is replaced.
func assignPath(cur any, path []string, value string) any {
	if len(path) == 0 {
		return value
	}
	if path[0] == "" {
		arr, _ := cur.([]any)
		return append(arr, assignPath(nil, path[1:], value))
	}
	obj, ok := cur.(map[string]any)
	if !ok {
		obj = make(map[string]any)
	}
	obj[path[0]] = assignPath(obj[path[0]], path[1:], value)
	return obj
}
