//go:build linux

package lazyfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mountT mounts a lazyfs for the test; it skips only where FUSE cannot
// be used (no /dev/fuse, mounting not permitted).
func mountT(t *testing.T) *FS {
	t.Helper()
	backing, mnt := t.TempDir(), t.TempDir()
	f, err := Mount(backing, mnt)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("FUSE not usable on this machine: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func write(t *testing.T, path string, off int64, data string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt([]byte(data), off); err != nil {
		t.Fatal(err)
	}
}

func fsync(t *testing.T, path string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
}

func requireContents(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s: %q, want %q", filepath.Base(path), got, want)
	}
}

func requireGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s: stat %v, want not exist", filepath.Base(path), err)
	}
}

func cut(t *testing.T, f *FS) {
	t.Helper()
	if err := f.PowerCut(); err != nil {
		t.Fatal(err)
	}
}

func TestLazyFSUnsyncedWritesLost(t *testing.T) {
	f := mountT(t)
	p := filepath.Join(f.Mountpoint(), "a")
	write(t, p, 0, "hello")
	fsync(t, p)
	write(t, p, 5, " world") // appended, not synced
	write(t, p, 0, "J")      // overwrites a durable byte
	write(t, p, 0, "Y")      // the same byte again
	requireContents(t, p, "Yello world")
	if files, _ := f.Pending(); files != 1 {
		t.Fatalf("%d files pending, want 1", files)
	}
	cut(t, f)
	requireContents(t, p, "hello")
	if files, created := f.Pending(); files != 0 || created != 0 {
		t.Fatalf("after the cut %d/%d pending, want none", files, created)
	}
}

func TestLazyFSFsyncKeepsEverythingBefore(t *testing.T) {
	f := mountT(t)
	p := filepath.Join(f.Mountpoint(), "a")
	write(t, p, 0, "one")
	write(t, p, 3, "two")
	fsync(t, p)
	write(t, p, 6, "three")
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fdatasync(int(fh.Fd())); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	write(t, p, 0, "XXX")
	cut(t, f)
	requireContents(t, p, "onetwothree")
}

func TestLazyFSCreatedNeverSyncedDisappears(t *testing.T) {
	f := mountT(t)
	mnt := f.Mountpoint()
	write(t, filepath.Join(mnt, "synced"), 0, "kept")
	fsync(t, filepath.Join(mnt, "synced"))
	write(t, filepath.Join(mnt, "unsynced"), 0, "lost")
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(mnt, "d", "entry-synced"), 0, "data lost")
	d, err := os.Open(filepath.Join(mnt, "d"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	cut(t, f)
	requireContents(t, filepath.Join(mnt, "synced"), "kept")
	requireGone(t, filepath.Join(mnt, "unsynced"))
	// The directory's fsync made the entry durable, not the data.
	requireContents(t, filepath.Join(mnt, "d", "entry-synced"), "")
}

func TestLazyFSTruncateRolledBack(t *testing.T) {
	f := mountT(t)
	p := filepath.Join(f.Mountpoint(), "a")
	write(t, p, 0, "0123456789")
	fsync(t, p)
	if err := os.Truncate(p, 4); err != nil {
		t.Fatal(err)
	}
	write(t, p, 6, "ab") // regrown past the cut with a hole
	requireContents(t, p, "0123\x00\x00ab")
	cut(t, f)
	requireContents(t, p, "0123456789")

	// O_TRUNC on open and a growing ftruncate.
	fh, err := os.OpenFile(p, os.O_RDWR|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	cut(t, f)
	requireContents(t, p, "0123456789")
}

// TestLazyFSMmapWrites covers what badger does: writes through a shared
// mapping, made durable by msync. Dirty pages not msynced are lost, even
// though the kernel may write them back before the cut.
func TestLazyFSMmapWrites(t *testing.T) {
	f := mountT(t)
	p := filepath.Join(f.Mountpoint(), "m")
	const size = 3 * 4096
	fh, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(fh.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	copy(m[0:], "page zero, synced")
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	copy(m[4096:], "page one, not synced")
	copy(m[8192:], "page two, not synced")
	if err := unix.Munmap(m); err != nil {
		t.Fatal(err)
	}
	fh.Close() // the close writes the dirty pages back: they reach lazyfs unsynced
	cut(t, f)
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	copy(want, "page zero, synced")
	if !bytes.Equal(got, want) {
		t.Fatalf("after the cut: %q..., want only page zero's synced write", bytes.TrimRight(got, "\x00"))
	}
}

// TestLazyFSRenameSurvives documents what is not modelled: a rename takes
// effect at once and survives a cut, with the file's journal.
func TestLazyFSRenameSurvives(t *testing.T) {
	f := mountT(t)
	mnt := f.Mountpoint()
	write(t, filepath.Join(mnt, "old"), 0, "durable")
	fsync(t, filepath.Join(mnt, "old"))
	write(t, filepath.Join(mnt, "old"), 7, " and not")
	if err := os.Rename(filepath.Join(mnt, "old"), filepath.Join(mnt, "new")); err != nil {
		t.Fatal(err)
	}
	cut(t, f)
	requireGone(t, filepath.Join(mnt, "old"))
	requireContents(t, filepath.Join(mnt, "new"), "durable")
}

func TestLazyFSCountsFsyncsByName(t *testing.T) {
	f := mountT(t)
	p := filepath.Join(f.Mountpoint(), "x.mem")
	write(t, p, 0, "a")
	fsync(t, p)
	fsync(t, p)
	isMem := func(name string) bool { return filepath.Ext(name) == ".mem" }
	if n := f.Fsyncs(isMem); n != 2 {
		t.Fatalf("%d fsyncs of .mem files, want 2", n)
	}
}
