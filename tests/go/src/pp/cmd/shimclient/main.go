// Command shimclient drives our cloud-api-adaptor (built with the test provider) the way the kata
// shim's remote hypervisor does: hypervisor.Hypervisor over ttrpc from the Go containerd/ttrpc
// client, both as the Go shim (a new connection per call) and as runtime-rs (one connection), plus
// podvminfo.PodVMInfo, input validation, concurrency and the generic ttrpc checks.
//
//	shimclient -adaptor <path to adaptor_test_daemon>
//
// Each scenario prints "PASS name" or "FAIL name: why"; the last line is "N passed, M failed"
// and the exit code is non-zero on any failure.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"pp/harness"
	"pp/ttrpccheck"
	"pp/wire"
)

func main() {
	adaptor := flag.String("adaptor", "", "adaptor_test_daemon binary; started as <adaptor> test -socket <s> -pods-dir <d>")
	timeout := flag.Duration("timeout", 5*time.Minute, "fail and clean up if the run takes longer")
	flag.Parse()
	if *adaptor == "" {
		fmt.Fprintln(os.Stderr, "shimclient: -adaptor <path> is required")
		os.Exit(2)
	}
	os.Exit(run(*adaptor, *timeout))
}

func run(adaptorPath string, timeout time.Duration) int {
	var cleanup harness.Cleanup
	defer cleanup.Run()
	cleanup.ExitOnSignal()
	cleanup.Watchdog(timeout)

	dir, err := os.MkdirTemp("", "pp-shimclient-")
	if err != nil {
		fmt.Println("FAIL setup:", err)
		return 1
	}
	cleanup.Add(func() { os.RemoveAll(dir) })
	env := &env{socket: filepath.Join(dir, "hypervisor.sock"), podsDir: filepath.Join(dir, "pods")}
	if err := os.Mkdir(env.podsDir, 0o755); err != nil {
		fmt.Println("FAIL setup:", err)
		return 1
	}

	// The load checks keep up to 64 sandboxes alive, past CAA's default per-node limit of 10 (which
	// has tests of its own): no limit here.
	proc, err := harness.Start("adaptor", adaptorPath, "test", "-socket", env.socket, "-pods-dir", env.podsDir,
		"-peerpods-limit-per-node", "0")
	if err != nil {
		fmt.Println("FAIL setup:", err)
		return 1
	}
	cleanup.Add(proc.Kill)

	r := harness.Runner{Peer: proc}
	if !r.Run("daemon_accepts", func() error { return harness.WaitDial(env.socket, proc, 30*time.Second) }) {
		fmt.Println(proc.LogTail(40))
		return r.Summary()
	}
	for _, st := range []style{goShim, runtimeRs} {
		env.lifecycleChecks(&r, st)
		env.validationChecks(&r, st)
	}
	genericChecks(&r, ttrpccheck.Target{
		Socket: env.socket, Service: wire.HypervisorService, Method: wire.MethodVersion,
		Request: &wire.VersionRequest{},
	})
	env.loadChecks(&r)
	r.Run("no_sandbox_dirs_left", env.noLeftovers)
	r.Run("sigterm_exits_0", func() error {
		if err := proc.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		code, err := proc.WaitExit(30 * time.Second)
		if err == nil && code != 0 {
			err = fmt.Errorf("daemon exited with %d, want 0", code)
		}
		return err
	})

	if r.Failed() {
		fmt.Printf("---- adaptor output (last 60 lines) ----\n%s\n----\n", proc.LogTail(60))
	}
	return r.Summary()
}

func genericChecks(r *harness.Runner, t ttrpccheck.Target) {
	r.Run("ttrpc/unknown_service", func() error { return ttrpccheck.UnknownService(t) })
	r.Run("ttrpc/unknown_method", func() error { return ttrpccheck.UnknownMethod(t) })
	r.Run("ttrpc/raw_response_shape", func() error { return ttrpccheck.ResponseShape(t) })
	r.Run("ttrpc/raw_even_stream_id", func() error { return ttrpccheck.EvenStreamID(t) })
	r.Run("ttrpc/raw_unparsable_request", func() error { return ttrpccheck.Unparsable(t) })
	r.Run("ttrpc/raw_oversize_frame", func() error { return ttrpccheck.Oversize(t) })
}
