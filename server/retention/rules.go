// Package retention decides when stored objects expire, and deletes them:
// [[retention]] rules give a key prefix, an optional match on what Kazoo's
// metadata says the object is, and a maximum age; [[hold]] tables exempt a
// prefix from every rule (docs/retention.md). Plan reports what a sweep would
// delete; Run and the Sweeper delete it through the store, so that every
// delete queues its attachment.deleted events, with the reason "retention".
package retention

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/attachd/attachd/server/recording"
	"github.com/attachd/attachd/server/store"
)

// Rule is one [[retention]] table.
type Rule struct {
	// Prefix is a path of the store's tree as a URL path ("/" is the whole
	// store, "/accounts/4b31/" one folder), escaped as in URLs, like a
	// [[users]] root. It matches whole segments: "/a/b" covers "/a/b" and
	// everything below it, not "/a/bc".
	Prefix string `toml:"prefix"`
	// Match narrows the rule to some objects below Prefix.
	Match Match `toml:"match"`
	// MaxAge is how long an object is kept, from when it was recorded.
	MaxAge Age `toml:"max_age"`

	key string // Prefix as a canonical key, set by Validate
}

// Match selects objects by what they are. Empty fields match anything.
type Match struct {
	// DocType is the Kazoo document type the object is the attachment of,
	// as DocType reads it: "mailbox_message" (voicemail),
	// "call_recording" or "fax".
	DocType string `toml:"doc_type"`
	// ContentType is a media type, or a pattern such as "audio/*",
	// compared without parameters and case.
	ContentType string `toml:"content_type"`
}

// Empty reports whether m matches every object.
func (m Match) Empty() bool { return m.DocType == "" && m.ContentType == "" }

// Hold is one [[hold]] table: a legal hold. Nothing below Prefix expires,
// whatever rule covers it.
type Hold struct {
	Prefix string `toml:"prefix"` // as Rule.Prefix
	Note   string `toml:"note"`   // why, for the operator; shown by attachd retention plan

	key string
}

// Sweep is the [retention_sweep] table: the background sweeper of attachd serve.
type Sweep struct {
	// Rate is the most deletes per second (default 5); never more than
	// one is in flight. A negative rate turns the sweeper off.
	Rate float64 `toml:"rate"`
	// Interval is the pause between two sweeps (default 1h).
	Interval Age `toml:"interval"`
}

// Defaults of Sweep.
const (
	DefaultRate     = 5
	DefaultInterval = Age(time.Hour)
)

// Settings returns s with its defaults filled in.
func (s Sweep) Settings() Sweep {
	if s.Rate == 0 {
		s.Rate = DefaultRate
	}
	if s.Interval <= 0 {
		s.Interval = DefaultInterval
	}
	return s
}

// Age is a duration written as Go writes them ("36h", "90m") or in days
// ("90d") or weeks ("12w").
type Age time.Duration

// ParseAge parses an Age.
func ParseAge(s string) (Age, error) {
	s = strings.TrimSpace(s)
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		v, err := strconv.ParseFloat(s[:n-1], 64)
		if err == nil && v > 0 && v < 1e5 {
			unit := 24 * time.Hour
			if s[n-1] == 'w' {
				unit *= 7
			}
			return Age(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad age %q: want e.g. \"90d\", \"12w\" or \"36h\"", s)
	}
	return Age(d), nil
}

// UnmarshalText parses an Age.
func (a *Age) UnmarshalText(b []byte) error {
	v, err := ParseAge(string(b))
	*a = v
	return err
}

// MarshalText prints whole weeks as "12w", whole days as "90d", anything
// else as Go does.
func (a Age) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

func (a Age) String() string {
	d := time.Duration(a)
	if d > 0 && d%(7*24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(7*24*time.Hour)), 10) + "w"
	}
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// FieldError is a bad value in one table of an array (from 1).
type FieldError struct {
	Table string // "retention" or "hold"
	Elem  int
	Key   string // the key in the table: "prefix", "max_age", "match"
	Msg   string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s.%s: [[%s]] %d: %s", e.Table, e.Key, e.Table, e.Elem, e.Msg)
}

// DocTypes are the values Match.DocType takes.
var DocTypes = []string{"mailbox_message", "call_recording", "fax"}

// Validate checks the rules and holds and prepares them for Policy.
func Validate(rules []Rule, holds []Hold) error {
	seen := map[string]int{}
	for i := range rules {
		r := &rules[i]
		fe := func(key, format string, args ...any) error {
			return &FieldError{Table: "retention", Elem: i + 1, Key: key, Msg: fmt.Sprintf(format, args...)}
		}
		k, err := prefixKey(r.Prefix)
		if err != nil {
			return fe("prefix", "%v", err)
		}
		r.key = k
		if r.MaxAge <= 0 {
			return fe("max_age", "must be set and positive, e.g. \"90d\"")
		}
		if t := r.Match.DocType; t != "" && !contains(DocTypes, t) {
			return fe("match", "doc_type: want one of %q, got %q", DocTypes, t)
		}
		if ct := r.Match.ContentType; ct != "" {
			if _, err := path.Match(strings.ToLower(ct), ""); err != nil || !strings.Contains(ct, "/") {
				return fe("match", "content_type: want a media type or a pattern like \"audio/*\", got %q", ct)
			}
		}
		sig := r.key + "\x00" + r.Match.DocType + "\x00" + strings.ToLower(r.Match.ContentType)
		if j, ok := seen[sig]; ok {
			return fe("prefix", "the same prefix and match as [[retention]] %d: which would win is not clear", j)
		}
		seen[sig] = i + 1
	}
	for i := range holds {
		h := &holds[i]
		k, err := prefixKey(h.Prefix)
		if err != nil {
			return &FieldError{Table: "hold", Elem: i + 1, Key: "prefix", Msg: err.Error()}
		}
		h.key = k
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// prefixKey turns a URL-path prefix into a canonical key ("" for "/").
func prefixKey(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("want a path starting with '/' (\"/\" is the whole store), got %q", p)
	}
	k, err := store.CanonicalPath(p)
	if err != nil {
		return "", fmt.Errorf("%q: %v", p, err)
	}
	return k, nil
}

// under reports whether key is prefix or below it (prefix "" is the root).
func under(key, prefix string) bool {
	return prefix == "" || key == prefix || strings.HasPrefix(key, prefix+"/")
}

// DocType tells what Kazoo document an object is the attachment of:
// "mailbox_message", "call_recording", "fax", or "" if nothing says
// (recording.DocType).
func DocType(o store.Object) string {
	var m map[string]any
	json.Unmarshal(o.Meta, &m)
	return recording.DocType(o.Key[strings.LastIndexByte(o.Key, '/')+1:], o.ContentType, m)
}

func mediaType(ct string) string {
	ct, _, _ = strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

func (m Match) matches(o store.Object, docType func() string) bool {
	if m.ContentType != "" {
		if ok, _ := path.Match(strings.ToLower(m.ContentType), mediaType(o.ContentType)); !ok {
			return false
		}
	}
	return m.DocType == "" || m.DocType == docType()
}

// RecordedAt is the time an object's age counts from: when Kazoo says it
// was recorded (recording.Time), else when it was first stored.
func RecordedAt(o store.Object) time.Time {
	var m map[string]any
	if json.Unmarshal(o.Meta, &m) == nil {
		if t := recording.Time(m); !t.IsZero() {
			return t
		}
	}
	if !o.Created.IsZero() {
		return o.Created
	}
	return o.Updated
}

// Policy is a validated set of rules and holds.
type Policy struct {
	Rules []Rule
	Holds []Hold
}

// NewPolicy validates rules and holds (see Validate) into a Policy.
func NewPolicy(rules []Rule, holds []Hold) (*Policy, error) {
	rules, holds = append([]Rule(nil), rules...), append([]Hold(nil), holds...)
	if err := Validate(rules, holds); err != nil {
		return nil, err
	}
	return &Policy{Rules: rules, Holds: holds}, nil
}

// Verdict is what the policy says of one object.
type Verdict struct {
	Rule    int       // index of the rule that governs it, or -1
	Held    int       // index of the hold that covers it, PropertyHold, or -1
	Expires time.Time // when it expires under Rule (zero if no rule)
}

// PropertyHold is Verdict.Held for an object held by the WebDAV property
// (prophold.go) rather than a [[hold]] table.
const PropertyHold = -2

// Expired reports whether the object should be deleted at now.
func (v Verdict) Expired(now time.Time) bool {
	return v.Rule >= 0 && v.Held == -1 && !now.Before(v.Expires)
}

// Decide finds the rule that governs o — the one with the longest prefix
// covering it; at equal prefixes, one whose match names both the document
// type and the content type beats one naming one of them, which beats one
// with no match — and the hold that covers it.
func (p *Policy) Decide(o store.Object) Verdict {
	v := Verdict{Rule: -1, Held: -1}
	for i, h := range p.Holds {
		if under(o.Key, h.key) {
			v.Held = i
			break
		}
	}
	var dt *string
	docType := func() string {
		if dt == nil {
			s := DocType(o)
			dt = &s
		}
		return *dt
	}
	best, bestLen, bestSpec := -1, -1, -1
	for i, r := range p.Rules {
		if !under(o.Key, r.key) || !r.Match.matches(o, docType) {
			continue
		}
		spec := 0
		if r.Match.DocType != "" {
			spec++
		}
		if r.Match.ContentType != "" {
			spec++
		}
		if l := len(r.key); l > bestLen || (l == bestLen && spec > bestSpec) {
			best, bestLen, bestSpec = i, l, spec
		}
	}
	if best >= 0 {
		v.Rule = best
		v.Expires = RecordedAt(o).Add(time.Duration(p.Rules[best].MaxAge))
	}
	return v
}
