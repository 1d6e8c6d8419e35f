// Command relaybench measures what the agent path costs. The same Go containerd/ttrpc client (one
// connection per path, as the shim keeps one) calls a Go ttrpc TEST STAND-IN for the kata-agent
// (pp/agentstandin, in this process) through:
//
//	(a) a direct unix connection to the agent
//	(b) our agent proxy (agent.ttrpc) -> our agent-protocol-forwarder over mutual TLS -> agent
//	(c) the same with -disable-tls on both sides
//	(d) socat unix -> tcp -> unix, the relay a user could reach for:
//	    socat UNIX-LISTEN:d.sock,fork TCP:127.0.0.1:p  +  socat TCP-LISTEN:p,fork,reuseaddr UNIX-CONNECT:agent.sock
//
// For each path: round trips of a small call (grpc.Health/Check, sequential) as p50/p99, and the
// throughput of 1 MiB calls (CopyFile with 1 MiB of data) sequential and with 8 in flight. Paths
// run interleaved (ABCD, then DCBA) so drift on a shared machine hits all alike. Prints a markdown
// table and the ratios issue 3 asks about.
//
//	relaybench -adaptor <adaptor_test_daemon> -forwarder <agent-protocol-forwarder> [-out relay.md]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"pp/agentchain"
	"pp/agentstandin"
	"pp/harness"
	"ppbench/stats"
	"pp/testpki"
)

type options struct {
	duration, warmup time.Duration
	rounds           int
	inflight         int
}

func main() {
	adaptor := flag.String("adaptor", "", "adaptor_test_daemon binary")
	forwarder := flag.String("forwarder", "", "agent-protocol-forwarder binary")
	out := flag.String("out", "", "also write the report to this file")
	var o options
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured time per run")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured time before each run")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds per measurement; each runs every path (alternating order)")
	flag.IntVar(&o.inflight, "inflight", 8, "calls in flight for the parallel 1 MiB run")
	flag.Parse()
	if *adaptor == "" || *forwarder == "" {
		fmt.Fprintln(os.Stderr, "relaybench: -adaptor <path> and -forwarder <path> are required")
		os.Exit(2)
	}
	if err := run(*adaptor, *forwarder, *out, o); err != nil {
		fmt.Fprintln(os.Stderr, "relaybench:", err)
		os.Exit(1)
	}
}

type path struct {
	label, name string
	socket      string
}

func run(adaptorBin, forwarderBin, outPath string, o options) error {
	var cleanup harness.Cleanup
	defer cleanup.Run()
	cleanup.ExitOnSignal()
	cleanup.Watchdog(20 * time.Minute)

	socat, err := exec.LookPath("socat")
	if err != nil {
		return fmt.Errorf("socat is needed for the baseline: %w", err)
	}
	dir, err := os.MkdirTemp("", "pprelay-") // short: agent.ttrpc paths must fit sun_path
	if err != nil {
		return err
	}
	cleanup.Add(func() { os.RemoveAll(dir) })

	agent, err := agentstandin.Start(filepath.Join(dir, "agent.sock"), false)
	if err != nil {
		return err
	}
	cleanup.Add(agent.Close)

	// (b) mutual TLS with material from a test CA, as in manual mode.
	ca, err := testpki.NewCA("relaybench CA")
	if err != nil {
		return err
	}
	caFile, err := ca.WriteCert(dir, "ca")
	if err != nil {
		return err
	}
	srv, err := ca.Issue(testpki.LeafOptions{CommonName: "podvm-server", DNSNames: []string{"podvm-server"}})
	if err != nil {
		return err
	}
	srvFiles, err := srv.Write(dir, "server")
	if err != nil {
		return err
	}
	cli, err := ca.Issue(testpki.LeafOptions{CommonName: "cloud-api-adaptor", Client: true})
	if err != nil {
		return err
	}
	cliFiles, err := cli.Write(dir, "client")
	if err != nil {
		return err
	}
	tlsPath, err := startOurs(&cleanup, adaptorBin, forwarderBin, filepath.Join(dir, "b"), agent.Socket,
		&agentchain.TLSFiles{CA: caFile, Cert: srvFiles.Cert, Key: srvFiles.Key},
		[]string{"-ca-cert-file", caFile, "-cert-file", cliFiles.Cert, "-cert-key", cliFiles.Key})
	if err != nil {
		return fmt.Errorf("(b) ours with mTLS: %w", err)
	}
	plainPath, err := startOurs(&cleanup, adaptorBin, forwarderBin, filepath.Join(dir, "c"), agent.Socket, nil,
		[]string{"-disable-tls"})
	if err != nil {
		return fmt.Errorf("(c) ours without TLS: %w", err)
	}
	socatPath, err := startSocat(&cleanup, socat, dir, agent.Socket)
	if err != nil {
		return fmt.Errorf("(d) socat: %w", err)
	}

	paths := []*path{
		{label: "a", name: "direct unix", socket: agent.Socket},
		{label: "b", name: "ours: proxy + forwarder, mTLS", socket: tlsPath},
		{label: "c", name: "ours: proxy + forwarder, no TLS", socket: plainPath},
		{label: "d", name: "socat unix->tcp->unix", socket: socatPath},
	}
	small := make([]*result, len(paths))
	seq := make([]*result, len(paths))
	par := make([]*result, len(paths))
	// perRound[m][round][path]: the ratios are taken per round, so that drift between rounds on a
	// shared machine does not favour either side, and reported as median and range.
	perRound := make([][][]*result, 3)
	for mi, m := range []struct {
		what    string
		into    []*result
		measure func(string) (*result, error)
	}{
		{"Health/Check", small, func(s string) (*result, error) { return measureSmall(s, o) }},
		{"1 MiB sequential", seq, func(s string) (*result, error) { return measureBulk(s, 1, o) }},
		{fmt.Sprintf("1 MiB x%d", o.inflight), par, func(s string) (*result, error) { return measureBulk(s, o.inflight, o) }},
	} {
		for round := 0; round < o.rounds; round++ {
			perRound[mi] = append(perRound[mi], make([]*result, len(paths)))
			for k := range paths {
				i := k
				if round%2 == 1 {
					i = len(paths) - 1 - k
				}
				fmt.Fprintf(os.Stderr, "relaybench: %s via (%s) %s, round %d\n", m.what, paths[i].label, paths[i].name, round+1)
				r, err := m.measure(paths[i].socket)
				if err != nil {
					return fmt.Errorf("%s via (%s) %s: %w", m.what, paths[i].label, paths[i].name, err)
				}
				m.into[i] = m.into[i].merge(r)
				perRound[mi][round][i] = r
			}
		}
	}

	w := io.Writer(os.Stdout)
	if outPath != "" {
		if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
			return err
		}
		f, err := os.Create(outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	fmt.Fprintf(w, "Agent path relay: Go containerd/ttrpc 1.1.1 client -> Go ttrpc stand-in agent, one client connection per path, "+
		"%v measured after %v warmup per run, %d rounds (alternating order), %d CPUs, loopback; table cells pool all rounds\n\n",
		o.duration, o.warmup, o.rounds, runtime.NumCPU())
	fmt.Fprintf(w, "| path | p50 us | p99 us | 1 MiB seq MiB/s | 1 MiB x%d MiB/s |\n", o.inflight)
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for i, p := range paths {
		fmt.Fprintf(w, "| (%s) %s | %.1f | %.1f | %.0f | %.0f |\n", p.label, p.name,
			micros(small[i].percentile(50)), micros(small[i].percentile(99)), seq[i].mibps(), par[i].mibps())
	}
	fmt.Fprintln(w)
	each := func(m int, f func(r []*result) float64) []float64 {
		var out []float64
		for _, r := range perRound[m] {
			out = append(out, f(r))
		}
		return out
	}
	stat := stats.Summary
	fmt.Fprintf(w, "- (b) mTLS vs (d) socat, 1 MiB throughput: sequential %s, x%d %s (goal: >= 1.00x)\n",
		stat(each(1, func(r []*result) float64 { return r[1].mibps() / r[3].mibps() }), "%.2fx"), o.inflight,
		stat(each(2, func(r []*result) float64 { return r[1].mibps() / r[3].mibps() }), "%.2fx"))
	fmt.Fprintf(w, "- (c) no TLS p50 minus (a) direct p50: %s (goal: < 50 us)\n",
		stat(each(0, func(r []*result) float64 { return micros(r[2].percentile(50) - r[0].percentile(50)) }), "%.1f us"))
	fmt.Fprintf(w, "- for reference: (b) p50 minus (a) p50: %s; (d) p50 minus (a) p50: %s\n",
		stat(each(0, func(r []*result) float64 { return micros(r[1].percentile(50) - r[0].percentile(50)) }), "%.1f us"),
		stat(each(0, func(r []*result) float64 { return micros(r[3].percentile(50) - r[0].percentile(50)) }), "%.1f us"))
	return nil
}

// startOurs runs a forwarder (tls nil: -disable-tls) and an adaptor with the given TLS arguments,
// creates and starts one sandbox, and returns its agent.ttrpc.
func startOurs(cleanup *harness.Cleanup, adaptorBin, forwarderBin, dir, agentSock string, tls *agentchain.TLSFiles, adaptorTLS []string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	port, err := agentchain.FreePort()
	if err != nil {
		return "", err
	}
	fwd := agentchain.Forwarder{Bin: forwarderBin, Port: port, AgentSock: agentSock, PodNetns: "",
		Config: filepath.Join(dir, "no-apf.json"), TLS: tls}
	fp, err := fwd.Start(30 * time.Second)
	if err != nil {
		return "", err
	}
	cleanup.Add(fp.Kill)
	args := append([]string{"-log-level", "warn", "-tls-dir", filepath.Join(dir, "tls-unused")}, adaptorTLS...)
	a, err := agentchain.StartAdaptor(adaptorBin, dir, port, args...)
	if err != nil {
		return "", err
	}
	cleanup.Add(a.Proc.Kill)
	const id = "bench0001"
	socket, err := a.CreateVM(agentchain.SandboxRequest(id, "bench-pod", "0"))
	if err != nil {
		return "", fmt.Errorf("CreateVM: %w", err)
	}
	if err := a.StartVM(id, 120*time.Second); err != nil {
		return "", fmt.Errorf("StartVM: %w\n%s", err, a.Proc.LogTail(20))
	}
	return socket, nil
}

func startSocat(cleanup *harness.Cleanup, socat, dir, agentSock string) (string, error) {
	port, err := agentchain.FreePort()
	if err != nil {
		return "", err
	}
	tcpSide, err := harness.Start("socat-tcp", socat,
		"TCP-LISTEN:"+strconv.Itoa(port)+",bind=127.0.0.1,fork,reuseaddr", "UNIX-CONNECT:"+agentSock)
	if err != nil {
		return "", err
	}
	cleanup.Add(tcpSide.Kill)
	if err := agentchain.WaitTCP("127.0.0.1:"+strconv.Itoa(port), tcpSide, 10*time.Second); err != nil {
		return "", err
	}
	sock := filepath.Join(dir, "d.sock")
	unixSide, err := harness.Start("socat-unix", socat, "UNIX-LISTEN:"+sock+",fork", "TCP:127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return "", err
	}
	cleanup.Add(unixSide.Kill)
	return sock, harness.WaitDial(sock, unixSide, 10*time.Second)
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
