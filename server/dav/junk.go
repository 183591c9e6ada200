package dav

import (
	"strings"

	"github.com/attachd/attachd/server/store"
)

// isJunk reports whether a file name is metadata an OS scatters over network
// drives: Finder's .DS_Store and AppleDouble ._* files, Windows' Thumbs.db
// and desktop.ini (docs/webdav-clients.md §4.4, §4.10; hacdias/webdav #221).
func isJunk(name string) bool {
	switch strings.ToLower(name) {
	case ".ds_store", "thumbs.db", "desktop.ini":
		return true
	}
	return strings.HasPrefix(name, "._")
}

// discardJunk reports whether a write of the resource at key is to be
// answered as if done but not done (dav.hide_junk = "hide"): Finder and
// Windows scatter these files over every folder they open, and keep
// writing them whatever they are told; a listing never shows them anyway.
func (h *Handler) discardJunk(key string) bool {
	return h.opts.HideJunk == JunkHide && isJunk(lastSegment(key))
}

// lastSegment returns the decoded last segment of a key.
func lastSegment(key string) string {
	i := strings.LastIndexByte(key, '/')
	return store.UnescapeSegment(key[i+1:])
}
