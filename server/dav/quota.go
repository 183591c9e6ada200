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
	// The field types differ between systems (FreeBSD's Bavail is signed:
	// a root reserve can make it negative), hence the conversions.
	bs := uint64(st.Bsize)
	return uint64(max(int64(st.Bavail), 0)) * bs, (uint64(st.Blocks) - uint64(st.Bfree)) * bs, nil
}
