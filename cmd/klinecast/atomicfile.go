package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// atomicFile writes a file that appears complete or not at all: data goes to
// a temporary file in the same directory, which commit flushes, fsyncs and
// renames over the destination, then fsyncs the directory so the rename
// itself survives a crash. A reader never sees a half-written output, and
// a failed or interrupted run leaves any previous file in place.
type atomicFile struct {
	*bufio.Writer
	path string
	f    *os.File
	done bool
}

// createAtomic starts writing path. The caller must call commit or abort.
func createAtomic(path string) (*atomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, err
	}
	return &atomicFile{Writer: bufio.NewWriterSize(f, 256<<10), path: path, f: f}, nil
}

// commit makes the file visible at its path.
func (a *atomicFile) commit() error {
	if a.done {
		return errors.New("atomic file: already committed or aborted")
	}
	a.done = true
	err := a.Flush()
	if err == nil {
		err = a.f.Sync()
	}
	if err == nil {
		// Rename does not change the temp file's 0600 mode; outputs are
		// ordinary data files.
		err = a.f.Chmod(0o644)
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(a.f.Name(), a.path)
	}
	if err != nil {
		os.Remove(a.f.Name())
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	return syncDir(filepath.Dir(a.path))
}

// abort discards the file; it is a no-op after commit.
func (a *atomicFile) abort() {
	if a.done {
		return
	}
	a.done = true
	a.f.Close()
	os.Remove(a.f.Name())
}

// syncDir fsyncs a directory so that renames in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
