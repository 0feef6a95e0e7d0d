//go:build linux

package storage

import (
	"os"
	"syscall"
)

// freeBytes returns the space available to unprivileged users on the file
// system holding dir.
func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}

// dirStat answers freeBytes for one directory without allocating: it
// keeps the directory open and calls fstatfs on the descriptor (statfs on
// a path converts the path to a C string on every call). The zero value
// knows nothing.
type dirStat struct{ f *os.File }

func openDirStat(dir string) dirStat {
	f, err := os.Open(dir)
	if err != nil {
		return dirStat{}
	}
	return dirStat{f: f}
}

func (d dirStat) free() (int64, bool) {
	if d.f == nil {
		return 0, false
	}
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(int(d.f.Fd()), &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}

func (d dirStat) close() {
	if d.f != nil {
		d.f.Close()
	}
}
