// Command conformance drives a ttrpc server of ttrpctest.Test/Echo with the Go containerd/ttrpc
// client (and hand-written frames where the client cannot go) and checks it behaves as a ttrpc
// peer must: payloads, metadata, deadlines, errors, limits, concurrency, graceful shutdown.
//
//	conformance -server <path to ttrpc_test_server or goechoserver>
//
// Each scenario prints "PASS name" or "FAIL name: why"; the last line is "N passed, M failed"
// and the exit code is non-zero on any failure.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"pp/harness"
	"pp/ttrpccheck"
	"pp/wire"
)

func main() {
	server := flag.String("server", "", "server binary; started as <server> -unix <socket>")
	timeout := flag.Duration("timeout", 5*time.Minute, "fail and clean up if the run takes longer")
	flag.Parse()
	if *server == "" {
		fmt.Fprintln(os.Stderr, "conformance: -server <path> is required")
		os.Exit(2)
	}
	os.Exit(run(*server, *timeout))
}

func run(serverPath string, timeout time.Duration) int {
	var cleanup harness.Cleanup
	defer cleanup.Run()
	cleanup.ExitOnSignal()
	cleanup.Watchdog(timeout)

	dir, err := os.MkdirTemp("", "pp-conformance-")
	if err != nil {
		fmt.Println("FAIL setup:", err)
		return 1
	}
	cleanup.Add(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "test.sock")

	proc, err := harness.Start("server", serverPath, "-unix", socket)
	if err != nil {
		fmt.Println("FAIL setup:", err)
		return 1
	}
	cleanup.Add(proc.Kill)

	r := harness.Runner{Peer: proc}
	if !r.Run("server_ready", func() error { return proc.WaitReady(30 * time.Second) }) {
		fmt.Println(proc.LogTail(40))
		return r.Summary()
	}
	s := &suite{socket: socket}
	s.echoChecks(&r)
	s.loadChecks(&r)
	rawChecks(&r, ttrpccheck.Target{
		Socket: socket, Service: wire.TestService, Method: wire.MethodEcho,
		Request: &wire.EchoRequest{Payload: []byte("ping")},
	})
	r.Run("graceful_shutdown", func() error { return gracefulShutdown(proc, socket) })

	if r.Failed() {
		fmt.Printf("---- server output (last 40 lines) ----\n%s\n----\n", proc.LogTail(40))
	}
	return r.Summary()
}

func rawChecks(r *harness.Runner, t ttrpccheck.Target) {
	r.Run("unknown_service", func() error { return ttrpccheck.UnknownService(t) })
	r.Run("unknown_method", func() error { return ttrpccheck.UnknownMethod(t) })
	r.Run("raw_response_shape", func() error { return ttrpccheck.ResponseShape(t) })
	r.Run("raw_even_stream_id", func() error { return ttrpccheck.EvenStreamID(t) })
	r.Run("raw_unparsable_request", func() error { return ttrpccheck.Unparsable(t) })
	r.Run("raw_oversize_frame", func() error { return ttrpccheck.Oversize(t) })
}
