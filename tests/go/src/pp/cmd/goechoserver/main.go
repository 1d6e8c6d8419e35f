// Command goechoserver serves ttrpctest.Test/Echo with the Go containerd/ttrpc library: the
// independent peer our C++ client is tested against and the baseline of the ttrpc benchmark.
//
//	goechoserver -unix <socket-path>
//
// Prints "ready" once listening; SIGTERM or SIGINT shuts down gracefully (in-flight calls finish)
// and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"

	"pp/wire"
)

// shutdownGrace bounds how long in-flight calls may run after SIGTERM.
const shutdownGrace = 10 * time.Second

func main() {
	socket := flag.String("unix", "", "unix socket path to listen on")
	flag.Parse()
	if *socket == "" {
		fmt.Fprintln(os.Stderr, "goechoserver: -unix <socket-path> is required")
		os.Exit(2)
	}
	if err := run(*socket); err != nil {
		fmt.Fprintln(os.Stderr, "goechoserver:", err)
		os.Exit(1)
	}
}

func run(socket string) error {
	server, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	server.Register(wire.TestService, map[string]ttrpc.Method{wire.MethodEcho: echo})

	listener, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	served := make(chan error, 1)
	go func() { served <- server.Serve(context.Background(), listener) }()
	fmt.Println("ready")

	select {
	case err := <-served:
		return err
	case <-signals:
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		server.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
		return err
	}
	return nil
}
