package fdpass

import (
	"os"

	"golang.org/x/sys/unix"
)

// PipeSize is the buffer the host asks for on a download pipe: Linux's
// default 64 KiB made each side wait on the other every 64 KiB.
const PipeSize = 1 << 20

// Pipe returns a pipe for a download, with a larger buffer where the
// system allows it (an unprivileged process is capped by
// /proc/sys/fs/pipe-max-size; the default is kept then).
func Pipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	if rc, err := w.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, PipeSize) })
	}
	return r, w, nil
}

// sockType keeps each descriptor's message whole and, unlike a datagram
// socket, lets the plugin see the host's end close.
const sockType = unix.SOCK_SEQPACKET
