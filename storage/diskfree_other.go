//go:build !linux

package storage

// freeBytes is unknown here: the disk reserve check is skipped.
func freeBytes(dir string) (int64, bool) { return 0, false }

// dirStat knows nothing here.
type dirStat struct{}

func openDirStat(dir string) dirStat { return dirStat{} }
func (dirStat) free() (int64, bool)  { return 0, false }
func (dirStat) close()               {}
