package main

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"pp/harness"
	"pp/wire"
)

// gracefulShutdown: SIGTERM while a 500 ms call is in flight. The call still succeeds, new dials
// fail afterwards, and the server exits 0.
//
// To know the call is in flight without guessing a delay, it is sent by hand together with a
// quick call behind it on the same connection: once the quick reply arrives, the server has read
// the slow request.
func gracefulShutdown(proc *harness.Process, socket string) error {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(callTimeout))

	if err := sendEchoes(conn, map[uint32]*wire.EchoRequest{
		1: {Payload: []byte("in flight"), SleepMs: 500},
		3: {Payload: []byte("quick")},
	}); err != nil {
		return err
	}
	if err := expectEcho(conn, 3, "quick"); err != nil {
		return fmt.Errorf("before SIGTERM: %w", err)
	}

	if err := proc.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := expectEcho(conn, 1, "in flight"); err != nil {
		return fmt.Errorf("in-flight call after SIGTERM: %w", err)
	}
	if c, err := net.Dial("unix", socket); err == nil {
		c.Close()
		return fmt.Errorf("a new dial succeeded after SIGTERM and a finished in-flight call")
	}
	code, err := proc.WaitExit(30 * time.Second)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("server exited with %d, want 0", code)
	}
	return nil
}
