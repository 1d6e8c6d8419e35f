package harness

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// crashGrace is how long a failed scenario waits to see whether the peer is dying, so a crash
// is reported as the cause instead of as a dial error.
const crashGrace = time.Second

// Runner runs named scenarios and counts the outcomes.
type Runner struct {
	// Peer, when set, is the process under test. Once it has exited, every later scenario fails
	// with that cause without running, so one crash reads as one crash, not a page of dial errors.
	Peer *Process
	// Filter, when set, runs only the scenarios whose name starts with it (and "setup/" ones);
	// the others print "SKIP name" and count as neither passed nor failed.
	Filter string

	mu     sync.Mutex
	passed int
	failed int
}

// Run runs fn and prints "PASS name" or "FAIL name: why". A panic counts as a failure.
func (r *Runner) Run(name string, fn func() error) bool {
	if r.Filter != "" && !strings.HasPrefix(name, r.Filter) && !strings.HasPrefix(name, "setup/") {
		fmt.Printf("SKIP %s\n", name)
		return true
	}
	var err error
	if r.Peer != nil {
		err = r.Peer.Running()
	}
	if err == nil {
		err = protect(fn)
		if err != nil && r.Peer != nil {
			select {
			case <-r.Peer.Exited():
				err = fmt.Errorf("%v; %v", err, r.Peer.Running())
			case <-time.After(crashGrace):
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return false
	}
	r.passed++
	fmt.Printf("PASS %s\n", name)
	return true
}

func protect(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return fn()
}

// Failed reports whether any scenario failed so far.
func (r *Runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed > 0
}

// Summary prints "N passed, M failed" and returns the exit code.
func (r *Runner) Summary() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Printf("%d passed, %d failed\n", r.passed, r.failed)
	if r.failed > 0 {
		return 1
	}
	return 0
}
