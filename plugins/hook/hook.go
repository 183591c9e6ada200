// Package hook is the contract between attachd's hook dispatcher and a
// post-save hook: the event a hook receives, the verdict it gives, and how it
// reads an object's bytes. The host's hook plugin clients implement Hook.
package hook

import (
	"context"
	"encoding/json"
	"io"
	"time"
)

// Event types.
const (
	Created = "attachment.created"
	Updated = "attachment.updated"
	Deleted = "attachment.deleted"
)

// SchemaVersion is the version of the Event JSON; it changes only when a
// field changes meaning or goes away.
const SchemaVersion = 1

// Event is what a hook receives. It carries no bytes: a hook that needs the
// content streams it from the host by key and SHA-256.
type Event struct {
	Schema     int       `json:"schema"`
	EventID    string    `json:"event_id"` // idempotency key: the same for every attempt
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	Attempt    int       `json:"attempt"` // 1 on the first delivery
	RequestID  string    `json:"request_id,omitempty"`
	// Reason says why a change no client asked for was made: "retention"
	// for an attachment.deleted by a retention rule. Empty otherwise.
	Reason string `json:"reason,omitempty"`
	Object Object `json:"object"`
}

// Object describes the object an event is about, as it is now.
type Object struct {
	Key         string          `json:"key"` // decoded path, "/"-separated
	Size        int64           `json:"size"`
	SHA256      string          `json:"sha256"`
	ContentType string          `json:"content_type"`
	DocID       string          `json:"doc_id,omitempty"`
	MediaID     string          `json:"media_id,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
}

// Outcome is a hook's verdict on one delivery.
type Outcome int

// Outcomes.
const (
	OK    Outcome = iota // done
	Retry                // try again later (after Result.RetryAfter if set)
	Fail                 // give up: dead letter
)

// Result is a hook's answer.
type Result struct {
	Outcome     Outcome
	RetryAfter  time.Duration
	Message     string
	Annotations map[string]string // stored in the object's metadata under "annotations"
}

// Hook delivers events. An error means the hook could not be asked (plugin
// down, timeout) and the delivery is retried.
type Hook interface {
	Deliver(ctx context.Context, ev Event) (Result, error)
}

// ContentOpener opens the bytes of the object at key (decoded path) if its
// current version has the given SHA-256; hooks read content through it.
type ContentOpener func(ctx context.Context, key, sha256 string) (io.ReadCloser, error)
