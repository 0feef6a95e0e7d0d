//go:build linux

package lazyfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// ErrUnavailable wraps a mount failure that means this machine cannot run
// FUSE file systems here (no /dev/fuse, or mounting not permitted): tests
// skip on it and fail on any other error.
var ErrUnavailable = errors.New("lazyfs: FUSE unavailable")

// FS is a mounted lazyfs. Its zero value is not usable: call Mount.
type FS struct {
	backing, mountpoint string

	server *fuse.Server // replaced by PowerCut's remount

	// mu guards the journal. It is held across a journaled write (the
	// save of the old bytes and the write itself), never across a FUSE
	// round trip.
	mu struct {
		sync.Mutex
		files   map[uint64]*fileJournal // by backing inode: changed since its last fsync
		created map[uint64]uint64       // backing inode → parent dir inode: created, entry not yet durable
		fsyncs  map[string]uint64       // file fsyncs answered, by base name
		cuts    int
	}
}

// fileJournal is what a power cut needs to roll one file back.
type fileJournal struct {
	size  int64        // the file's size at its last fsync
	saved []savedRange // old contents of durable bytes since changed, oldest first
}

type savedRange struct {
	off  int64
	data []byte
}

// Mount mounts a lazyfs of the directory backing on mountpoint (both must
// exist). Errors wrapping ErrUnavailable mean FUSE cannot be used here.
func Mount(backing, mountpoint string) (*FS, error) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	backing, err := filepath.Abs(backing)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: %w", err)
	}
	mountpoint, err = filepath.Abs(mountpoint)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: %w", err)
	}
	f := &FS{backing: backing, mountpoint: mountpoint}
	f.mu.files = map[uint64]*fileJournal{}
	f.mu.created = map[uint64]uint64{}
	f.mu.fsyncs = map[string]uint64{}
	if err := f.mount(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FS) mount() error {
	rootOps, err := gofs.NewLoopbackRoot(f.backing)
	if err != nil {
		return fmt.Errorf("lazyfs: loopback root %s: %w", f.backing, err)
	}
	lb := rootOps.(*gofs.LoopbackNode)
	root := &node{LoopbackNode: lb, fs: f}
	lb.RootData.RootNode = root
	srv, err := gofs.Mount(f.mountpoint, root, &gofs.Options{
		MountOptions: fuse.MountOptions{
			// mount(2) and umount(2) directly (root may): no
			// fusermount binary, and umount's own errors (EBUSY)
			// rather than a fallback's.
			DirectMountStrict: true,
			FsName:            "lazyfs:" + f.backing,
			Name:              "lazyfs",
		},
	})
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("%w: mounting %s: %w", ErrUnavailable, f.mountpoint, err)
		}
		return fmt.Errorf("lazyfs: mounting %s: %w", f.mountpoint, err)
	}
	f.server = srv
	return nil
}

// Mountpoint returns the directory the file system is mounted on.
func (f *FS) Mountpoint() string { return f.mountpoint }

// Unmount unmounts the file system, keeping the backing files as they are
// (nothing is rolled back).
//
// The kernel may still hold files of a process that just exited open for
// a moment (EBUSY); Unmount retries for up to a minute.
func (f *FS) Unmount() error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := f.server.Unmount()
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("lazyfs: unmounting %s: %w", f.mountpoint, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

// PowerCut simulates a power loss: everything written since its file's
// last fsync is lost. Processes using the mount must be gone (killed and
// reaped) first, or the unmount fails with EBUSY. Afterwards the file
// system is mounted again on the same mount point and shows the durable
// state only.
func (f *FS) PowerCut() error {
	if err := f.Unmount(); err != nil {
		return fmt.Errorf("lazyfs: power cut: %w", err)
	}
	if err := f.rollBack(); err != nil {
		return fmt.Errorf("lazyfs: power cut: %w", err)
	}
	if err := f.mount(); err != nil {
		return fmt.Errorf("lazyfs: power cut: remounting: %w", err)
	}
	return nil
}

// Pending reports how many files have changes that a power cut would
// lose, and how many created files it would delete.
func (f *FS) Pending() (files, created int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.mu.files), len(f.mu.created)
}

// Fsyncs reports how many fsyncs (or fdatasyncs) of files whose base
// name satisfies match lazyfs has answered since Mount. A program's
// fsync that is counted after a moment t may have started before t; the
// second one counted after t started after t.
func (f *FS) Fsyncs(match func(name string) bool) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n uint64
	for name, c := range f.mu.fsyncs {
		if match(name) {
			n += c
		}
	}
	return n
}

// rollBack applies the journal to the backing directory (unmounted).
func (f *FS) rollBack() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := filepath.WalkDir(f.backing, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		if _, ok := f.mu.created[st.Ino]; ok {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("deleting %s, created and never fsynced: %w", path, err)
			}
			return nil
		}
		j := f.mu.files[st.Ino]
		if j == nil {
			return nil
		}
		return j.rollBack(path)
	})
	f.mu.files = map[uint64]*fileJournal{}
	f.mu.created = map[uint64]uint64{}
	f.mu.cuts++
	return err
}

// rollBack restores the file at path to its size and contents at its
// last fsync.
func (j *fileJournal) rollBack(path string) error {
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("rolling back %s: %w", path, err)
	}
	defer fh.Close()
	if err := fh.Truncate(j.size); err != nil {
		return fmt.Errorf("rolling back %s: %w", path, err)
	}
	// Newest first, so that a range saved twice ends up with its oldest
	// (durable) contents.
	for _, s := range slices.Backward(j.saved) {
		if _, err := fh.WriteAt(s.data, s.off); err != nil {
			return fmt.Errorf("rolling back %s at %d: %w", path, s.off, err)
		}
	}
	return nil
}

// journalLocked returns the journal of the file open as fd, starting one
// (at the file's current size, durable until now) if it has none.
func (f *FS) journalLocked(fd int) (*fileJournal, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, err
	}
	j := f.mu.files[st.Ino]
	if j == nil {
		j = &fileJournal{size: st.Size}
		f.mu.files[st.Ino] = j
	}
	return j, nil
}

// saveLocked saves the durable bytes of [off, off+n) of the file open as
// fd before they change.
func (f *FS) saveLocked(fd int, off, n int64) error {
	j, err := f.journalLocked(fd)
	if err != nil {
		return err
	}
	end := min(off+n, j.size)
	if off >= end {
		return nil
	}
	buf := make([]byte, end-off)
	got, err := syscall.Pread(fd, buf, off)
	if err != nil {
		return err
	}
	// Bytes past the current end (a truncate since the fsync, itself
	// saved) read as nothing; the roll-back re-extends with zeros first.
	j.saved = append(j.saved, savedRange{off: off, data: buf[:got]})
	return nil
}

// fsynced makes the file with backing inode ino, called name, durable.
func (f *FS) fsynced(ino uint64, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.fsyncs[name]++
	delete(f.mu.files, ino)
	delete(f.mu.created, ino)
}

// dirFsynced makes the entries of files created in directory ino durable
// (their contents stay as journaled).
func (f *FS) dirFsynced(ino uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for file, dir := range f.mu.created {
		if dir == ino {
			delete(f.mu.created, file)
		}
	}
}

// node is a loopback node whose changes to file contents are journaled.
type node struct {
	*gofs.LoopbackNode
	fs *FS
}

var (
	_ gofs.NodeWrapChilder    = (*node)(nil)
	_ gofs.NodeOpener         = (*node)(nil)
	_ gofs.NodeCreater        = (*node)(nil)
	_ gofs.NodeWriter         = (*node)(nil)
	_ gofs.NodeWritever       = (*node)(nil)
	_ gofs.NodeFsyncer        = (*node)(nil)
	_ gofs.NodeSetattrer      = (*node)(nil)
	_ gofs.NodeAllocater      = (*node)(nil)
	_ gofs.NodeCopyFileRanger = (*node)(nil)
	_ gofs.NodeOpendirHandler = (*node)(nil)
)

func (n *node) WrapChild(ctx context.Context, ops gofs.InodeEmbedder) gofs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*gofs.LoopbackNode), fs: n.fs}
}

// backingPath is the node's file in the backing directory.
func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	trunc := flags&syscall.O_TRUNC != 0
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags&^syscall.O_TRUNC)
	if errno != 0 {
		return nil, 0, errno
	}
	h := &file{lf: fh.(*gofs.LoopbackFile)}
	if trunc {
		if errno := n.truncate(h, 0); errno != 0 {
			h.Release(ctx)
			return nil, 0, errno
		}
	}
	return h, fuseFlags, 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	existed := false
	if _, err := os.Lstat(filepath.Join(n.backingPath(), name)); err == nil {
		existed = true
	}
	trunc := flags&syscall.O_TRUNC != 0
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_TRUNC, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	h := &file{lf: fh.(*gofs.LoopbackFile)}
	fd := h.fd()
	var st, dst syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, nil, 0, gofs.ToErrno(err)
	}
	if err := syscall.Stat(n.backingPath(), &dst); err != nil {
		return nil, nil, 0, gofs.ToErrno(err)
	}
	if !existed {
		n.fs.mu.Lock()
		n.fs.mu.created[st.Ino] = dst.Ino
		n.fs.mu.files[st.Ino] = &fileJournal{size: 0}
		n.fs.mu.Unlock()
	}
	if trunc {
		if errno := n.truncate(h, 0); errno != 0 {
			return nil, nil, 0, errno
		}
	}
	return ch, h, fuseFlags, 0
}

func (n *node) Write(ctx context.Context, fh gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	return n.Writev(ctx, fh, [][]byte{data}, off)
}

func (n *node) Writev(ctx context.Context, fh gofs.FileHandle, data [][]byte, off int64) (uint32, syscall.Errno) {
	h, ok := fh.(*file)
	if !ok {
		return 0, syscall.EBADF
	}
	var size int64
	for _, d := range data {
		size += int64(len(d))
	}
	fd := h.fd()
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	if err := n.fs.saveLocked(fd, off, size); err != nil {
		return 0, gofs.ToErrno(err)
	}
	w, err := unix.Pwritev(fd, data, off)
	return uint32(w), gofs.ToErrno(err)
}

func (n *node) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	var st syscall.Stat_t
	if h, ok := fh.(*file); ok {
		if err := syscall.Fstat(h.fd(), &st); err != nil {
			return gofs.ToErrno(err)
		}
	} else if err := syscall.Lstat(n.backingPath(), &st); err != nil {
		return gofs.ToErrno(err)
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		n.fs.dirFsynced(st.Ino)
	} else {
		n.fs.fsynced(st.Ino, filepath.Base(n.Path(n.Root())))
	}
	return 0
}

func (n *node) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	h, _ := fh.(*file)
	if sz, ok := in.GetSize(); ok {
		if h == nil {
			fd, err := syscall.Open(n.backingPath(), syscall.O_RDWR, 0)
			if err != nil {
				return gofs.ToErrno(err)
			}
			tmp := &file{lf: gofs.NewLoopbackFileFromOS(os.NewFile(uintptr(fd), n.backingPath()))}
			defer tmp.lf.Release(ctx)
			h = tmp
		}
		if errno := n.truncate(h, int64(sz)); errno != 0 {
			return errno
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	var inner gofs.FileHandle
	if h != nil {
		inner = h.lf
	}
	return n.LoopbackNode.Setattr(ctx, inner, in, out)
}

// truncate sets the size of h's file, saving the durable bytes it cuts.
func (n *node) truncate(h *file, size int64) syscall.Errno {
	fd := h.fd()
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return gofs.ToErrno(err)
	}
	if size < st.Size {
		if err := n.fs.saveLocked(fd, size, st.Size-size); err != nil {
			return gofs.ToErrno(err)
		}
	} else if _, err := n.fs.journalLocked(fd); err != nil {
		return gofs.ToErrno(err)
	}
	return gofs.ToErrno(syscall.Ftruncate(fd, size))
}

func (n *node) Allocate(ctx context.Context, fh gofs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	h, ok := fh.(*file)
	if !ok {
		return syscall.EBADF
	}
	fd := h.fd()
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	var err error
	switch mode &^ unix.FALLOC_FL_KEEP_SIZE {
	case 0: // allocation only: no byte changes, a size change is journaled
		_, err = n.fs.journalLocked(fd)
	case unix.FALLOC_FL_PUNCH_HOLE, unix.FALLOC_FL_ZERO_RANGE:
		err = n.fs.saveLocked(fd, int64(off), int64(size))
	default: // collapse or insert range: everything after off moves
		err = n.fs.saveLocked(fd, int64(off), 1<<62)
	}
	if err != nil {
		return gofs.ToErrno(err)
	}
	return gofs.ToErrno(unix.Fallocate(fd, mode, int64(off), int64(size)))
}

// CopyFileRange is refused, so the kernel falls back to reads and
// journaled writes.
func (n *node) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64, out *gofs.Inode, fhOut gofs.FileHandle, offOut uint64, size uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	ds, fuseFlags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dir{inner: ds, node: n}, fuseFlags, 0
}

// file is an open file. It wraps the loopback file without offering
// PassthroughFd: with kernel passthrough, reads and writes would bypass
// the journal.
type file struct {
	lf *gofs.LoopbackFile
}

var (
	_ gofs.FileReader    = (*file)(nil)
	_ gofs.FileReleaser  = (*file)(nil)
	_ gofs.FileGetattrer = (*file)(nil)
	_ gofs.FileFlusher   = (*file)(nil)
	_ gofs.FileLseeker   = (*file)(nil)
	_ gofs.FileGetlker   = (*file)(nil)
	_ gofs.FileSetlker   = (*file)(nil)
	_ gofs.FileSetlkwer  = (*file)(nil)
)

// fd is the backing file's descriptor, valid until Release.
func (h *file) fd() int {
	fd, _ := h.lf.PassthroughFd()
	return fd
}

func (h *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return h.lf.Read(ctx, dest, off)
}
func (h *file) Release(ctx context.Context) syscall.Errno { return h.lf.Release(ctx) }
func (h *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Getattr(ctx, out)
}
func (h *file) Flush(ctx context.Context) syscall.Errno { return h.lf.Flush(ctx) }
func (h *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lf.Lseek(ctx, off, whence)
}
func (h *file) Getlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	return h.lf.Getlk(ctx, owner, lk, flags, out)
}
func (h *file) Setlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return h.lf.Setlk(ctx, owner, lk, flags)
}
func (h *file) Setlkw(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return h.lf.Setlkw(ctx, owner, lk, flags)
}

// dir is an open directory whose fsync makes the entries of files created
// in it durable.
type dir struct {
	inner gofs.FileHandle
	node  *node
}

var (
	_ gofs.FileReaddirenter = (*dir)(nil)
	_ gofs.FileSeekdirer    = (*dir)(nil)
	_ gofs.FileReleasedirer = (*dir)(nil)
	_ gofs.FileFsyncdirer   = (*dir)(nil)
)

func (d *dir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	return d.inner.(gofs.FileReaddirenter).Readdirent(ctx)
}
func (d *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return d.inner.(gofs.FileSeekdirer).Seekdir(ctx, off)
}
func (d *dir) Releasedir(ctx context.Context, flags uint32) {
	d.inner.(gofs.FileReleasedirer).Releasedir(ctx, flags)
}
func (d *dir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.node.Fsync(ctx, nil, flags)
}
