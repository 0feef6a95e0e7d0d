//go:build !linux

package pinned

import "errors"

// pinnedAllowedCPUs reports that CPU affinity is unavailable: the pool then
// runs one locked, unpinned thread per worker.
func pinnedAllowedCPUs() ([]int, error) { return nil, errors.ErrUnsupported }

// pinnedPinThread is never called off Linux (pinnedAllowedCPUs fails first).
func pinnedPinThread(int) (func() error, error) { return nil, errors.ErrUnsupported }
