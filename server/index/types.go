package index

import (
	"encoding/json"
	"strings"
	"time"
)

// Object is one stored object as the index knows it.
type Object struct {
	Key         string          // canonical key
	Blob        string          // name of the blob file holding this version's bytes
	Size        int64           // bytes
	SHA256      string          // lower-case hex digest of the bytes
	ContentType string          // as the uploader declared it
	DocID       string          // Kazoo document id, if known
	MediaID     string          // Kazoo media id, if known
	Meta        json.RawMessage // metadata object (Kazoo's JSON part, query strings)
	Props       json.RawMessage // WebDAV dead properties
	Created     time.Time       // first stored
	Updated     time.Time       // this version stored
	ModTime     time.Time       // modification time shown to clients (may be set by them)
}

// ETag returns the object's strong entity tag, derived from its SHA-256.
func (o Object) ETag() string { return `"` + o.SHA256 + `"` }

// Dir is a folder: explicit (made by MKCOL) or implied by the keys below it.
type Dir struct {
	Key     string
	Props   []byte
	Created int64 // unix nanoseconds
	ModTime int64
}

// Entry is one child of a folder.
type Entry struct {
	Key    string // full key of the child
	Name   string // its last segment, escaped as in keys
	IsDir  bool
	Object Object // for objects
	Dir    Dir    // for folders
}

// Fields selects what Index.List fills in of each object.
type Fields int

const (
	AllFields Fields = iota // every field
	// ListFields is what a WebDAV listing shows: every field but Blob,
	// Updated and Meta. An implementation may read it faster.
	ListFields
	ListFieldsMeta // ListFields and Meta
)

// Lock is a WebDAV write lock (RFC 4918 §6) on the key Root.
type Lock struct {
	Token     string    // the lock token, a URI
	Root      string    // key of the locked resource
	ZeroDepth bool      // covers Root only, not the keys below it
	Shared    bool      // a shared lock; else exclusive
	Owner     string    // the client's owner XML, returned as given
	User      string    // login that took the lock
	Created   time.Time //
	Expires   time.Time // the lock is gone after this
}

// Covers reports whether the lock applies to key.
func (l Lock) Covers(key string) bool {
	if key == l.Root {
		return true
	}
	if l.ZeroDepth {
		return false
	}
	return l.Root == "" || strings.HasPrefix(key, l.Root+"/")
}

// Conflicts reports whether l and m cannot both be held: they cover each
// other's roots and are not both shared.
func (l Lock) Conflicts(m Lock) bool {
	if !l.Covers(m.Root) && !m.Covers(l.Root) {
		return false
	}
	return !l.Shared || !m.Shared
}

// LockedError is a lock refused because Held conflicts with it.
type LockedError struct{ Held Lock }

func (e *LockedError) Error() string { return "locked: " + e.Held.Root + " is locked" }

// Is makes a LockedError match ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Change types, as hooks name them.
const (
	ChangeCreated = "attachment.created"
	ChangeUpdated = "attachment.updated"
	ChangeDeleted = "attachment.deleted"
)

// Delivery is one queued delivery of a change to a sink.
type Delivery struct {
	ID          int64
	EventID     string // the same for every attempt: the receiver's idempotency key
	Sink        string
	Type        string
	Key         string
	Blob        string
	PrevBlob    string // the blob of the version this one replaced, if any
	SHA256      string
	Size        int64
	ContentType string
	DocID       string
	MediaID     string
	RequestID   string
	Reason      string // why the change was made, if not by a client: "retention"
	Occurred    time.Time
	Attempts    int // including the one being made
}

// Outcome is what became of one delivery attempt.
type Outcome struct {
	ID    int64
	Done  bool      // delivered: remove it
	Dead  bool      // given up: keep it as a dead letter
	Next  time.Time // otherwise: try again then
	Error string    // why it was not delivered
}

// SinkStats is the state of one sink's queue.
type SinkStats struct {
	Sink          string
	Pending       int
	OldestPending time.Time // zero if none
	Dead          int
}

// Parent returns the key of the folder holding key ("" at the top).
func Parent(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return ""
}

// Below returns the bounds of the keys strictly below the folder dir: k is
// below dir if lo < k < hi. Every key below the root is, and no other.
func Below(dir string) (lo, hi string) {
	if dir == "" {
		return "", "\U0010FFFF"
	}
	return dir + "/", dir + "0" // '0' is the byte after '/'
}
