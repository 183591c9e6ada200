package retention

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/attachd/attachd/server/store"
)

// A legal hold can also be set over WebDAV, by whoever may write there: the
// dead property {PropNS}legal-hold on an object holds it, on a folder holds
// everything below it. PROPPATCH sets and removes it (rw users only, as
// every PROPPATCH), PROPFIND shows it like any dead property, and its value
// is free text (a case number, say): being there is the hold.
const (
	PropNS   = "https://github.com/attachd/attachd/ns" // dav.NSAttachd
	PropHold = "legal-hold"
)

// DirStater reads a folder's record: a *store.Store or a *store.Outbox.
type DirStater interface {
	StatDir(ctx context.Context, key string) (store.Dir, error)
}

// propHolds says whether objects are held by the WebDAV property, on them
// or on a folder above them. It remembers what it read of folders for one
// walk.
type propHolds struct {
	dirs DirStater // nil: folders are not looked at
	seen map[string]bool
}

func newPropHolds(w any) *propHolds {
	ds, _ := w.(DirStater)
	return &propHolds{dirs: ds, seen: map[string]bool{}}
}

// held reports whether o or a folder above it carries the hold property.
func (h *propHolds) held(ctx context.Context, o store.Object) (bool, error) {
	if hasHold(o.Props) {
		return true, nil
	}
	if h.dirs == nil {
		return false, nil
	}
	for _, dir := range store.Parents(o.Key) {
		held, ok := h.seen[dir]
		if !ok {
			d, err := h.dirs.StatDir(ctx, dir)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return false, err
			}
			held = err == nil && hasHold(d.Props)
			h.seen[dir] = held
		}
		if held {
			return true, nil
		}
	}
	return false, nil
}

// hasHold reports whether stored dead properties include the hold.
func hasHold(raw []byte) bool {
	if len(raw) <= 2 {
		return false
	}
	var props []struct {
		NS   string `json:"ns"`
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &props) != nil {
		return false
	}
	for _, p := range props {
		if p.NS == PropNS && p.Name == PropHold {
			return true
		}
	}
	return false
}
