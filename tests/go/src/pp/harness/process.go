package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

const maxLog = 256 << 10 // bytes of child output kept for failure reports

// Process is a child program we started. Its stdout and stderr are kept (bounded) for reports.
type Process struct {
	Name string
	cmd  *exec.Cmd

	ready     chan struct{} // closed when stdout printed a line "ready"
	readyOnce sync.Once
	exited    chan struct{} // closed once the process has been reaped
	waitErr   error

	mu  sync.Mutex
	log bytes.Buffer
}

// Start runs path with args. The child gets SIGKILL if this process dies first (Pdeathsig), so
// a crashed test never leaves a server behind.
func Start(name, path string, args ...string) (*Process, error) {
	p := &Process{Name: name, ready: make(chan struct{}), exited: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Stderr = logWriter{p}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	go p.scanStdout(stdout)
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *Process) scanStdout(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		p.append([]byte(line + "\n"))
		if strings.TrimSpace(line) == "ready" {
			p.readyOnce.Do(func() { close(p.ready) })
		}
	}
}

type logWriter struct{ p *Process }

func (w logWriter) Write(b []byte) (int, error) {
	w.p.append(b)
	return len(b), nil
}

func (p *Process) append(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log.Write(b)
	if p.log.Len() > maxLog {
		p.log.Next(p.log.Len() - maxLog/2)
	}
}

// Pid of the child.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// WaitReady waits for the line "ready" on stdout; it fails if the process exits first.
func (p *Process) WaitReady(timeout time.Duration) error {
	select {
	case <-p.ready:
		return nil
	case <-p.exited:
		return fmt.Errorf("%s exited before printing ready: %v", p.Name, p.waitErr)
	case <-time.After(timeout):
		return fmt.Errorf("%s printed no ready line within %v", p.Name, timeout)
	}
}

// Exited is closed once the child has been reaped.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Running returns an error saying how the child ended, or nil while it runs.
func (p *Process) Running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s has exited (%v); see its output below", p.Name, p.waitErr)
	default:
		return nil
	}
}

// Signal sends sig to the child's pid.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL to the child's pid (if it still runs) and reaps it. Safe to call repeatedly.
func (p *Process) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
	}
}

// WaitExit waits for the child to end and returns its exit code (-1 when a signal ended it).
func (p *Process) WaitExit(timeout time.Duration) (int, error) {
	select {
	case <-p.exited:
	case <-time.After(timeout):
		return 0, fmt.Errorf("%s still running after %v", p.Name, timeout)
	}
	if p.waitErr == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, p.waitErr
}

// LogTail returns the last n lines the child printed.
func (p *Process) LogTail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := strings.Split(strings.TrimRight(p.log.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
