//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package storage

// On platforms without flock the directory is protected by badger's own
// lock only, whose error is less explicit (and is not ErrLocked).
type dirLock struct{}

func lockDir(dir string, shared bool) (*dirLock, error) { return &dirLock{}, nil }

func (l *dirLock) unlock() error { return nil }
