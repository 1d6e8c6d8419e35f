package harness

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Cleanup runs registered undo steps once, last added first, from whichever path gets there
// first: the normal return, a signal, or the watchdog. A second caller of Run waits until the
// first has finished, so no path exits while another is still cleaning up.
type Cleanup struct {
	once sync.Once
	mu   sync.Mutex
	fns  []func()
	done bool
}

// Add registers fn. After Run has happened, fn runs at once.
func (c *Cleanup) Add(fn func()) {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		fn()
		return
	}
	c.fns = append(c.fns, fn)
	c.mu.Unlock()
}

// Run runs every registered step once.
func (c *Cleanup) Run() {
	c.once.Do(func() {
		c.mu.Lock()
		fns := c.fns
		c.fns = nil
		c.done = true
		c.mu.Unlock()
		for i := len(fns) - 1; i >= 0; i-- {
			fns[i]()
		}
	})
}

// ExitOnSignal runs c and exits 130 on SIGINT, SIGTERM, SIGHUP or SIGPIPE (stdout piped into a
// reader that quit, e.g. head).
func (c *Cleanup) ExitOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		sig := <-ch
		fmt.Printf("FAIL interrupted: got %v\n", sig)
		c.Run()
		os.Exit(130)
	}()
}

// Watchdog runs c and exits 1 if the program is still running after d, so a hung peer
// cannot hang the test run.
func (c *Cleanup) Watchdog(d time.Duration) {
	time.AfterFunc(d, func() {
		fmt.Printf("FAIL watchdog: not finished within %v\n", d)
		c.Run()
		os.Exit(1)
	})
}
