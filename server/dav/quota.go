package dav

import (
	"fmt"
	"syscall"
)

// quota returns the free and used bytes of the filesystem holding the data
// directory, for the RFC 4331 properties. Clients show these as the drive's
// free space; without them they show 0 or exabytes (docs/webdav-clients.md §3.9).
func quota(dir string) (avail, used uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := uint64(st.Bsize)
	return st.Bavail * bs, (st.Blocks - st.Bfree) * bs, nil
}
