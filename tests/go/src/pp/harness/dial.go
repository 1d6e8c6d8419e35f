package harness

import (
	"fmt"
	"net"
	"time"
)

// WaitDial polls until a unix socket at path accepts a connection. It fails when p exits first
// or the timeout passes.
func WaitDial(path string, p *Process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("%s exited before accepting on %s: %v", p.Name, path, p.waitErr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept on %s within %v: %v", p.Name, path, timeout, err)
		}
	}
}
