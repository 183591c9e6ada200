package index

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/attachd/attachd/server/recording"
)

// Recording is what the voicemail browser lists and searches of an object:
// who called, which mailbox, when, for how long. The index derives it from
// the object's key, content type and metadata when the object is put
// (Describe), and keeps it in columns of its own, so that a search reads
// no JSON.
type Recording struct {
	At           time.Time     // when recorded, as Kazoo says; else when first stored
	Kind         string        // recording.Voicemail, CallRecording, Fax, or ""
	Account      string        // Kazoo account id, from the metadata or the key
	Mailbox      string        // voicemail box (or the callee of a recording)
	CallerName   string        // caller id name
	CallerNumber string        // caller id number
	Duration     time.Duration // length, if Kazoo says
}

// RecordingVersion is the version of Describe's rules. An index keeps, per
// object, the version its columns were derived with, and derives them
// again at open where they are older (the columns were added, or the rules
// changed).
const RecordingVersion = 1

// Describe derives an object's Recording from its key, content type and
// metadata (package recording).
func Describe(o Object) Recording {
	var m map[string]any
	json.Unmarshal(o.Meta, &m)
	s := recording.Summarize(o.Meta)
	r := Recording{
		At:           s.Timestamp,
		Kind:         recording.DocType(o.Key[strings.LastIndexByte(o.Key, '/')+1:], o.ContentType, m),
		Account:      s.AccountID,
		Mailbox:      s.Mailbox,
		CallerName:   s.CallerIDName,
		CallerNumber: firstNonEmpty(s.CallerIDNumber, s.From),
		Duration:     s.Length,
	}
	if r.Account == "" {
		r.Account = recording.AccountFromKey(o.Key)
	}
	if r.Mailbox == "" {
		r.Mailbox = s.To
	}
	if r.At.IsZero() {
		r.At = o.Created
	}
	return r
}

// AccountMoves reports whether moving the folder src to dst may change the
// Recording.Account of the objects below it: when an object's metadata
// names no account, it is read from the key (recording.AccountFromKey), and
// only the folder's part of the key changes. An implementation of
// Tx.MoveTree derives the account of those objects again.
func AccountMoves(src, dst string) bool {
	return recording.AccountFromKey(src) != recording.AccountFromKey(dst)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// SearchText is what a Query's Caller is matched against, as a substring:
// the caller's name and number, lower-cased.
func (r Recording) SearchText() string {
	return strings.ToLower(r.CallerName + "\n" + r.CallerNumber)
}

// Query selects objects for the voicemail browser (Index.Search). Empty
// fields select everything. Results come newest first, by Recording.At,
// then by key, descending.
type Query struct {
	Under       string    // the folder searched below ("" for all)
	Caller      string    // a substring of the caller's name or number, any case
	Account     string    // exactly this account
	Mailbox     string    // exactly this mailbox
	Kind        string    // exactly this kind (recording.Voicemail, …)
	ContentType string    // content types that start with this, any case ("audio/")
	Since       time.Time // recorded at or after
	Until       time.Time // recorded before
	After       *Cursor   // the page after this row: older ones only
	Limit       int       // at most this many; 0 or less: 50
}

// Cursor is the position of a row in a Search's order: keyset pagination.
type Cursor struct {
	At  time.Time
	Key string
}

// Hit is one object a Search found. Its Object carries what ListFields
// does (no Meta, Blob or Updated).
type Hit struct {
	Object
	Recording
}

// Cursor returns the position of h, to ask for the page after it.
func (h Hit) Cursor() Cursor { return Cursor{At: h.At, Key: h.Key} }

// Group is a value of an account or a mailbox and how many objects have it.
type Group struct {
	Value  string
	Count  int64
	Latest time.Time // the newest Recording.At among them
}

// PrefixPattern returns the LIKE pattern matching what starts with s,
// lower-cased, with '\' as the escape character.
func PrefixPattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(strings.ToLower(s)) + "%"
}

// DefaultSearchLimit is a Query's Limit when it sets none.
const DefaultSearchLimit = 50

// SQLWhere renders q's conditions, its cursor included, as SQL over the
// columns the SQLite and PostgreSQL indexes share (key, content_type and
// the rec_ columns of Recording), "TRUE" if it has none. arg adds a value
// and returns its placeholder; contains renders "the text column col
// contains the string at placeholder sub" in the database's dialect. The
// Caller, lower-cased, is looked for in rec_text, which holds SearchText.
func (q Query) SQLWhere(arg func(v any) string, contains func(col, sub string) string) string {
	var c []string
	if q.Under != "" {
		lo, hi := Below(q.Under)
		c = append(c, "key > "+arg(lo)+" AND key < "+arg(hi))
	}
	if q.Caller != "" {
		c = append(c, contains("rec_text", arg(strings.ToLower(q.Caller))))
	}
	for _, f := range []struct{ col, v string }{{"rec_account", q.Account}, {"rec_mailbox", q.Mailbox}, {"rec_kind", q.Kind}} {
		if f.v != "" {
			c = append(c, f.col+" = "+arg(f.v))
		}
	}
	if q.ContentType != "" {
		c = append(c, `lower(content_type) LIKE `+arg(PrefixPattern(q.ContentType))+` ESCAPE '\'`)
	}
	if !q.Since.IsZero() {
		c = append(c, "rec_at >= "+arg(q.Since.UnixNano()))
	}
	if !q.Until.IsZero() {
		c = append(c, "rec_at < "+arg(q.Until.UnixNano()))
	}
	if a := q.After; a != nil {
		// A row value, not rec_at < t OR (rec_at = t AND key < k): both
		// databases then start the index scan at the cursor.
		c = append(c, "(rec_at, key) < ("+arg(a.At.UnixNano())+", "+arg(a.Key)+")")
	}
	if len(c) == 0 {
		return "TRUE"
	}
	return strings.Join(c, " AND ")
}

// SearchLimit returns q.Limit, or DefaultSearchLimit if it sets none.
func (q Query) SearchLimit() int {
	if q.Limit <= 0 {
		return DefaultSearchLimit
	}
	return q.Limit
}
