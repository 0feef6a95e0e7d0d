//go:build !race

package testkit

// RaceEnabled reports a build with the race detector, whose runtime
// allocates on its own (shadow memory, sync bookkeeping): allocation
// counts mean nothing there.
const RaceEnabled = false
