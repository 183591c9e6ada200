package kazoo

import (
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"slices"

	"github.com/attachd/attachd/server/auth"
	"github.com/attachd/attachd/server/recording"
	"github.com/attachd/attachd/server/store"
)

// An object's metadata is a JSON object with up to three members:
//
//	document     the JSON part of a multipart store (Kazoo's public document fields)
//	store_query  the query string of the store request, parsed
//	fetch_query  the query strings of Kazoo's fetches, parsed and merged: for a
//	             raw store this is often the only metadata there is (docs/kazoo.md §4)

// mergeFetchQuery merges a fetch's query into the object's fetch_query and
// fills in its media and document ids if they were unknown. It writes only
// when something changed: Kazoo sends the same query on every fetch.
func (h *Handler) mergeFetchQuery(ctx context.Context, o store.Object, params []Param) {
	var meta map[string]any
	if len(o.Meta) > 0 && json.Unmarshal(o.Meta, &meta) != nil {
		return
	}
	if meta == nil {
		meta = map[string]any{}
	}
	old, _ := meta["fetch_query"].(map[string]any)
	merged := mergeBounded(old, QueryToJSON(params), int(h.maxFetchMeta()))
	mediaID, docID := o.MediaID, o.DocID
	if mediaID == "" {
		mediaID = recording.Field(merged, "media_id")
	}
	if docID == "" {
		docID = recording.Field(merged, "id")
	}
	if reflect.DeepEqual(old, merged) && mediaID == o.MediaID && docID == o.DocID {
		return
	}
	meta["fetch_query"] = merged
	b, err := json.Marshal(meta)
	if err != nil {
		return
	}
	_, err = h.Store.Update(ctx, o.Key, func(n *store.Object) bool {
		if n.Blob != o.Blob {
			return false // replaced meanwhile; its own fetches will bring its metadata
		}
		n.Meta, n.MediaID, n.DocID = b, mediaID, docID
		if t := recording.Time(meta); !t.IsZero() && n.ModTime.Equal(n.Updated) {
			n.ModTime = t
		}
		return true
	})
	if err != nil {
		h.Log.Warn("could not record the metadata of a fetch", "key", store.UnescapeKey(o.Key), "user", userName(ctx), "err", err)
	}
}

// DefaultMaxFetchMeta bounds the fetch metadata kept per object when the
// handler's MaxFetchMeta is 0: Kazoo sends the same few keys on every fetch,
// so a client sending new ones must not grow the record without end.
const DefaultMaxFetchMeta = 16 << 10

func (h *Handler) maxFetchMeta() int64 {
	if h.MaxFetchMeta > 0 {
		return h.MaxFetchMeta
	}
	return DefaultMaxFetchMeta
}

// mergeBounded returns old with add merged in, in key order, leaving out
// each key whose addition would take the JSON encoding past limit bytes.
// Values of keys already there are updated when that fits too.
func mergeBounded(old, add map[string]any, limit int) map[string]any {
	merged := maps.Clone(old)
	if merged == nil {
		merged = map[string]any{}
	}
	size := 2 // {}
	for k, v := range merged {
		size += entrySize(k, v)
	}
	for _, k := range slices.Sorted(maps.Keys(add)) {
		delta := entrySize(k, add[k])
		if prev, ok := merged[k]; ok {
			delta -= entrySize(k, prev)
		}
		if size+delta > limit {
			continue
		}
		merged[k] = add[k]
		size += delta
	}
	return merged
}

// entrySize is the length of "k":v, in JSON.
func entrySize(k string, v any) int {
	kb, _ := json.Marshal(k)
	vb, _ := json.Marshal(v)
	return len(kb) + 1 + len(vb) + 1
}

func userName(ctx context.Context) string {
	if u := auth.FromContext(ctx); u != nil {
		return u.Name
	}
	return ""
}
