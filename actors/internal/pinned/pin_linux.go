//go:build linux

package pinned

import "golang.org/x/sys/unix"

// pinnedAllowedCPUs returns the CPUs of the calling thread's affinity mask,
// ascending. Go starts every thread with the process's mask, so this is the
// process's mask unless someone narrowed this thread's.
func pinnedAllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, err
	}
	cpus := make([]int, 0, set.Count())
	for id := 0; id < pinnedMaxCPU; id++ {
		if set.IsSet(id) {
			cpus = append(cpus, id)
		}
	}
	return cpus, nil
}

// pinnedPinThread sets the calling OS thread's affinity to exactly cpu and
// returns a function that gives the thread its previous mask back. The
// caller must hold runtime.LockOSThread. Typical errors: EPERM (seccomp,
// a policy forbidding it) and EINVAL (cpu offline or outside the cpuset).
func pinnedPinThread(cpu int) (restore func() error, err error) {
	var prev, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &prev); err != nil {
		return nil, err
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil { // 0: the calling thread
		return nil, err
	}
	return func() error { return unix.SchedSetaffinity(0, &prev) }, nil
}
