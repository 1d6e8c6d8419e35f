// Package harness is the scaffolding our interop programs share: start a peer binary and end it by
// pid on every path (defer, signal, watchdog, parent death), wait until it serves, run named
// scenarios that print PASS/FAIL lines, and compare ttrpc status codes.
package harness
