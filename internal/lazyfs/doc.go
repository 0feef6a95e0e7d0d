// Package lazyfs is a FUSE file system for power-loss tests, after
// Jepsen's LazyFS: a loopback over a backing directory that remembers what
// was written since each file's last fsync, so that a simulated power cut
// can throw exactly that away.
//
// Reads and writes go through to the backing files at once (so the running
// program sees its own writes, as it would through a page cache). Before a
// write, a shrinking truncate or a hole-punching fallocate changes bytes
// that were durable, lazyfs saves their old contents in an undo journal
// kept per backing inode, together with the file's size at its last fsync.
// fsync and fdatasync of a file make its current contents durable and drop
// its journal; files created since their last fsync (of the file itself)
// are journaled as new.
//
// PowerCut is the power cut: it unmounts (the kernel first writes back
// every dirty page it still holds, and those writes are journaled like any
// other), then rolls every journaled file back to its size and contents at
// its last fsync and deletes files created and never fsynced, and mounts
// again on the same mount point with empty caches. What survives is what a
// disk that loses everything not fsynced would keep.
//
// What is not modelled: renames, unlinks, links and directory creation
// take effect at once and survive a cut (a real file system may lose them
// until the directory is fsynced); fsync does not reach the backing disk
// (the backing directory is scratch space, only the model's durability
// matters). Files are identified by backing inode, so the backing
// directory must be one file system.
//
// Concurrency: one mutex guards the journal; FUSE requests may arrive
// concurrently and PowerCut may be called from any goroutine, but not
// concurrently with itself or Unmount.
//
// lazyfs imports no klinecast package (enforced by internal/layout); it
// imports go-fuse and is only for tests.
package lazyfs
