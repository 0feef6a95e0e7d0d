// Package layout holds no code: its test enforces the import rules each
// package's doc.go states, so the graph keeps pointing one way:
//
//	cmd → cluster → actors → storage → messages
//
// with the pure aggregation core (actors/aggregate) and the trade
// generator (internal/gen) importing only messages, and the shared test
// kit (internal/testkit, for _test.go files) importing no klinecast package.
package layout
