//go:build unix && !linux

package fdpass

import "syscall"

// sockType keeps each descriptor's message whole.
const sockType = syscall.SOCK_DGRAM
