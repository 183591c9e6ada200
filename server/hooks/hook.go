// Package hooks delivers post-save events to hook plugins: from an outbox
// written in the same index transaction as the object, at least once, with
// backoff, leases and dead letters.
package hooks

import "github.com/attachd/attachd/plugins/hook"

// The event contract lives in plugins/hook, shared with the plugin host,
// which must not depend on the server's packages.
type (
	Event         = hook.Event
	Object        = hook.Object
	Outcome       = hook.Outcome
	Result        = hook.Result
	Hook          = hook.Hook
	ContentOpener = hook.ContentOpener
)

// Event types and outcomes.
const (
	Created       = hook.Created
	Updated       = hook.Updated
	Deleted       = hook.Deleted
	SchemaVersion = hook.SchemaVersion
	OK            = hook.OK
	Retry         = hook.Retry
	Fail          = hook.Fail
)
