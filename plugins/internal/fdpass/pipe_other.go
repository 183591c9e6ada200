//go:build !linux

package fdpass

import "os"

// Pipe returns a pipe for a download.
func Pipe() (r, w *os.File, err error) { return os.Pipe() }
