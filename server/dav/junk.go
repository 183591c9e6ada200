package dav

import (
	"strings"

	"github.com/attachd/attachd/server/store"
)

// isJunk reports whether a file name is metadata an OS scatters over network
// drives: Finder's .DS_Store and AppleDouble ._* files, Windows' Thumbs.db
// and desktop.ini (webdav-anchors §4.4, §4.10; hacdias/webdav #221).
func isJunk(name string) bool {
	switch strings.ToLower(name) {
	case ".ds_store", "thumbs.db", "desktop.ini":
		return true
	}
	return strings.HasPrefix(name, "._")
}

// lastSegment returns the decoded last segment of a key.
func lastSegment(key string) string {
	i := strings.LastIndexByte(key, '/')
	return store.UnescapeSegment(key[i+1:])
}
