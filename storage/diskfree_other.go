//go:build !linux

package storage

// freeBytes is unknown here: the disk reserve check is skipped.
func freeBytes(dir string) (int64, bool) { return 0, false }
