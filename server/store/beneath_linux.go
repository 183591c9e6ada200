package store

import "golang.org/x/sys/unix"

// lookupOnly opens a name to learn that it is there, not to read it.
const lookupOnly = unix.O_PATH

// openBeneath opens name below the folder dirfd with one openat2 that the
// kernel confines to it: RESOLVE_BENEATH refuses an absolute name, and a
// ".." or a symbolic link that leads out, as os.Root does.
func openBeneath(dirfd int, name string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(dirfd, name, &how)
		if err != unix.EINTR && err != unix.EAGAIN { // EAGAIN: a rename raced the lookup
			return fd, err
		}
	}
}
