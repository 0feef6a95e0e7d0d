// Package testkit is the one shared test kit (STYLE rule 16): helpers any
// package's tests use instead of a private copy.
//
//   - Eventually polls a condition until it holds, instead of sleeping.
//   - Allocs and RequireNoAllocs count heap allocations exactly (unlike
//     testing.AllocsPerRun, which rounds the mean down, so 9,999
//     allocations in 10,000 runs read as 0).
//   - Binary builds a main package once per test process; Start runs a
//     built binary as a child process and waits for its "listening on URL"
//     line; ServeCmd makes the `klinecast serve` command line for a data dir
//     on a free loopback port.
//
// # Imports
//
// testkit imports the standard library only: no klinecast package
// (enforced by internal/layout), so that the tests of every package,
// messages included, can use it. It is imported by _test.go files only.
//
// # Concurrency
//
// Eventually and Start may be used from parallel tests. Allocs must not
// be: it counts every allocation the process makes while it runs (see its
// doc). A Binary is safe for concurrent use.
package testkit
