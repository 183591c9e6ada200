package store

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A store's renames, links and fsyncs happen in a few folders: tmp/, a
// shard of blobs/, and the folder of the key's sidecar. Through os.Root each
// of them walked from the top of the data directory (an openat and a close
// per path segment, and four fcntls for each file opened): three quarters of
// a store's system calls, and a fifth of its CPU time. A dirFD is such a
// folder held open, so that each step is one system call on names that are a
// single segment: it can name nothing outside the folder, which was itself
// opened inside the root.
type dirFD struct {
	f  *os.File // keeps fd open
	fd int
}

// openDirFD opens the folder name inside the data directory.
func (s *Store) openDirFD(name string) (*dirFD, error) {
	if s.top == nil {
		f, err := s.root.Open(name)
		if err != nil {
			return nil, err
		}
		return &dirFD{f: f, fd: int(f.Fd())}, nil
	}
	fd, err := s.beneath(name, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	// A blocking descriptor: os.NewFile does not register it with the poller.
	return &dirFD{f: os.NewFile(uintptr(fd), name), fd: fd}, nil
}

// beneath opens name inside the data directory with one system call that
// the kernel confines to it (openBeneath). os.Root walks the name instead
// (an openat and a close per segment), and os.File puts each descriptor it
// opens through the poller (four fcntls and an epoll_ctl for a folder or a
// regular file): a WebDAV PUT into a known folder made 58 system calls, 13
// of them for its two lookups of that folder.
func (s *Store) beneath(name string, flags int) (int, error) {
	fd, err := openBeneath(s.top.fd, name, flags)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return fd, nil
}

// openTop holds the data directory open for beneath, if this process can
// use it. s.top stays nil, and os.Root walks names instead, where the
// kernel has no openat2 (before Linux 5.6, or other systems) or a seccomp
// filter refuses it.
func (s *Store) openTop() error {
	f, err := s.root.Open(".")
	if err != nil {
		return fmt.Errorf("open data directory: %w", err)
	}
	top := &dirFD{f: f, fd: int(f.Fd())}
	fd, err := openBeneath(top.fd, ".", lookupOnly|unix.O_DIRECTORY)
	if err != nil {
		s.log.Debug("the store walks paths with os.Root", "err", err)
		return top.close()
	}
	unix.Close(fd)
	s.top = top
	return nil
}

func (d *dirFD) close() error { return d.f.Close() }

// leaf checks that name is one segment that stays in the folder.
func leaf(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("%w: %q is not a file name", ErrInvalidKey, name)
	}
	return nil
}

// create makes a new file name in d, for writing.
func (d *dirFD) create(name string) (*os.File, error) {
	if err := leaf(name); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	// A blocking descriptor: os.NewFile does not register it with the poller.
	return os.NewFile(uintptr(fd), name), nil
}

// open opens the file name in d for reading. Blobs are opened this way: a
// name that is not one segment, or a symbolic link, is refused.
func (d *dirFD) open(name string) (*os.File, error) {
	if err := leaf(name); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// remove removes the file name from d.
func (d *dirFD) remove(name string) error {
	if err := leaf(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// renameTo renames name in d to newName in to, replacing what is there.
func (d *dirFD) renameTo(name string, to *dirFD, newName string) error {
	if err := leaf(name); err != nil {
		return err
	}
	if err := leaf(newName); err != nil {
		return err
	}
	if err := unix.Renameat(d.fd, name, to.fd, newName); err != nil {
		return &os.LinkError{Op: "rename", Old: name, New: newName, Err: err}
	}
	return nil
}

// linkTo makes newName in to a hard link of name in d (not following a
// symbolic link).
func (d *dirFD) linkTo(name string, to *dirFD, newName string) error {
	if err := leaf(name); err != nil {
		return err
	}
	if err := leaf(newName); err != nil {
		return err
	}
	if err := unix.Linkat(d.fd, name, to.fd, newName, 0); err != nil {
		return &os.LinkError{Op: "link", Old: name, New: newName, Err: err}
	}
	return nil
}

// exists reports whether name is in d; a failure other than "not there"
// is an error.
func (d *dirFD) exists(name string) (bool, error) {
	if err := leaf(name); err != nil {
		return false, err
	}
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch err {
	case nil:
		return true, nil
	case unix.ENOENT:
		return false, nil
	}
	return false, &os.PathError{Op: "stat", Path: name, Err: err}
}

// sync makes d's entries durable.
func (d *dirFD) sync() error { return fsync(d.f) }

// shardDir returns the held folder blobs/xx of a blob this process named
// (newVersion: hex).
func (s *Store) shardDir(blob string) *dirFD {
	i, err := strconv.ParseUint(blob[:2], 16, 8)
	if err != nil {
		panic("store: blob name not from newVersion: " + blob)
	}
	return s.shardDirs[i]
}
