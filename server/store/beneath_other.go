//go:build !linux

package store

import (
	"errors"

	"golang.org/x/sys/unix"
)

const lookupOnly = unix.O_RDONLY

// openBeneath needs Linux's openat2; elsewhere the store walks names with
// os.Root.
func openBeneath(int, string, int) (int, error) { return -1, errors.ErrUnsupported }
