// Command chaintest drives the whole agent path end to end on loopback with real mutual TLS:
//
//	Go ttrpc client (as the kata shim)
//	  -> hypervisor.sock: adaptor_test_daemon -test-agent (CreateVM, StartVM, StopVM)
//	  -> <pods-dir>/<id>/agent.ttrpc: the adaptor's agent proxy
//	  -> TCP + mTLS: agent-protocol-forwarder
//	  -> unix socket: a Go ttrpc TEST STAND-IN for the kata-agent (pp/agentstandin), in this process
//
// It checks what the stand-in agent receives byte for byte (rewrites: CreateSandbox loses dns,
// CreateContainer joins the pod netns and gets the GPU CDI annotation; everything else untouched,
// metadata included), 64 concurrent calls on one connection, 4 MiB requests and replies, a
// forwarder restart under a call in flight, the TLS refusals (no client certificate, another CA,
// expired, wrong SAN, plaintext), refusals by the proxy of forwarders with a bad certificate, a
// garbage frame, and the auto-TLS mode (the adaptor's own CA).
//
//	chaintest -adaptor <adaptor_test_daemon> -forwarder <agent-protocol-forwarder>
//
// Each scenario prints "PASS name" or "FAIL name: why"; the last line is "N passed, M failed" and
// the exit code is non-zero on any failure. Every process is ended by pid on every path.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/ttrpc"

	"pp/agentchain"
	"pp/agentstandin"
	"pp/harness"
	"pp/testpki"
)

func main() {
	adaptor := flag.String("adaptor", "", "adaptor_test_daemon binary")
	forwarder := flag.String("forwarder", "", "agent-protocol-forwarder binary")
	timeout := flag.Duration("timeout", 8*time.Minute, "fail and clean up if the run takes longer")
	flag.Parse()
	if *adaptor == "" || *forwarder == "" {
		fmt.Fprintln(os.Stderr, "chaintest: -adaptor <path> and -forwarder <path> are required")
		os.Exit(2)
	}
	os.Exit(run(*adaptor, *forwarder, *timeout))
}

// podNetns is what the forwarder is told to put containers in; it need not exist for the relay.
const podNetns = "/run/netns/chaintest-podns"

type env struct {
	dir         string
	adaptorBin  string
	adaptorDir  string   // the adaptor's socket and pods dir, kept across its restart
	adaptorArgs []string // its TLS arguments, the same after a restart
	cleanup     *harness.Cleanup
	pki         *pki
	agent       *agentstandin.Agent
	fwd         agentchain.Forwarder
	fwdProc     *harness.Process
	adaptor     *agentchain.Adaptor

	sandboxID   string
	podName     string
	agentSocket string
	shim        *ttrpc.Client // the one agent connection the shim keeps
}

type pki struct {
	ca, otherCA                   *testpki.Authority
	caFile                        string
	server, client                testpki.Files // good material
	serverOtherSAN, serverOtherCA testpki.Files
	clientGood, clientOtherCA     *testpki.Leaf
	clientExpired                 *testpki.Leaf
}

func run(adaptorBin, forwarderBin string, timeout time.Duration) int {
	var cleanup harness.Cleanup
	defer cleanup.Run()
	cleanup.ExitOnSignal()
	cleanup.Watchdog(timeout)

	dir, err := os.MkdirTemp("", "ppchain-") // short: agent.ttrpc paths must fit sun_path (108 bytes)
	if err != nil {
		fmt.Println("FAIL setup:", err)
		return 1
	}
	cleanup.Add(func() { os.RemoveAll(dir) })
	e := &env{dir: dir, adaptorBin: adaptorBin, cleanup: &cleanup,
		sandboxID: "5e1f0a2bc3d4e5f60718293a4b5c6d7e8f9012345678abcdef0123456789abcd", podName: "chain-pod"}

	var r harness.Runner
	if !r.Run("setup/pki", func() (err error) { e.pki, err = makePKI(dir); return }) {
		return r.Summary()
	}
	if !r.Run("setup/standin_agent", func() (err error) {
		e.agent, err = agentstandin.Start(filepath.Join(dir, "agent.sock"), true)
		if err == nil {
			cleanup.Add(e.agent.Close)
		}
		return
	}) {
		return r.Summary()
	}
	port, err := agentchain.FreePort()
	if err != nil {
		fmt.Println("FAIL setup:", err)
		return 1
	}
	e.fwd = agentchain.Forwarder{
		Bin: forwarderBin, Port: port, AgentSock: e.agent.Socket, PodNetns: podNetns,
		Config: filepath.Join(dir, "no-apf.json"),
		TLS:    &agentchain.TLSFiles{CA: e.pki.caFile, Cert: e.pki.server.Cert, Key: e.pki.server.Key},
	}
	if !r.Run("setup/forwarder_listens", func() error { return e.startForwarder(e.fwd) }) {
		return r.Summary()
	}
	if !r.Run("setup/adaptor_accepts", func() (err error) {
		e.adaptorDir = filepath.Join(dir, "a")
		e.adaptorArgs = []string{"-ca-cert-file", e.pki.caFile, "-cert-file", e.pki.client.Cert,
			"-cert-key", e.pki.client.Key, "-tls-dir", filepath.Join(dir, "adaptor-tls-unused")}
		e.adaptor, err = agentchain.StartAdaptor(adaptorBin, e.adaptorDir, port, e.adaptorArgs...)
		if err == nil {
			cleanup.Add(e.adaptor.Proc.Kill)
		}
		return
	}) {
		return r.Summary()
	}
	r.Peer = e.adaptor.Proc

	if e.chainChecks(&r) {
		e.restartChecks(&r)
		e.genericChecks(&r)
		e.stopChecks(&r)
	}
	r.Peer = nil // these talk to the forwarder only: an adaptor crash must not hide their results
	e.tlsRefusals(&r)
	r.Peer = e.adaptor.Proc
	e.proxyRefusals(&r)
	r.Peer = nil // a second adaptor of its own
	e.autoTLS(&r, forwarderBin)

	r.Run("shutdown/forwarder_sigterm_exits_0", func() error { return stopExpectZero(e.fwdProc) })
	r.Run("shutdown/adaptor_sigterm_exits_0", func() error { return stopExpectZero(e.adaptor.Proc) })

	if r.Failed() {
		fmt.Printf("---- adaptor output (last 60 lines) ----\n%s\n", e.adaptor.Proc.LogTail(60))
		if e.fwdProc != nil {
			fmt.Printf("---- forwarder output (last 40 lines) ----\n%s\n----\n", e.fwdProc.LogTail(40))
		}
	}
	return r.Summary()
}

func makePKI(dir string) (*pki, error) {
	p := &pki{}
	var err error
	if p.ca, err = testpki.NewCA("chaintest CA"); err != nil {
		return nil, err
	}
	if p.otherCA, err = testpki.NewCA("chaintest other CA"); err != nil {
		return nil, err
	}
	if p.caFile, err = p.ca.WriteCert(dir, "ca"); err != nil {
		return nil, err
	}
	issue := func(a *testpki.Authority, o testpki.LeafOptions, name string) (*testpki.Leaf, testpki.Files, error) {
		leaf, err := a.Issue(o)
		if err != nil {
			return nil, testpki.Files{}, err
		}
		files, err := leaf.Write(dir, name)
		return leaf, files, err
	}
	if _, p.server, err = issue(p.ca, testpki.LeafOptions{CommonName: "podvm-server", DNSNames: []string{"podvm-server"}}, "server"); err != nil {
		return nil, err
	}
	if p.clientGood, p.client, err = issue(p.ca, testpki.LeafOptions{CommonName: "cloud-api-adaptor", Client: true}, "client"); err != nil {
		return nil, err
	}
	if _, p.serverOtherSAN, err = issue(p.ca, testpki.LeafOptions{CommonName: "some-other-host", DNSNames: []string{"some-other-host"}}, "server-other-san"); err != nil {
		return nil, err
	}
	if _, p.serverOtherCA, err = issue(p.otherCA, testpki.LeafOptions{CommonName: "podvm-server", DNSNames: []string{"podvm-server"}}, "server-other-ca"); err != nil {
		return nil, err
	}
	if p.clientOtherCA, _, err = issue(p.otherCA, testpki.LeafOptions{CommonName: "cloud-api-adaptor", Client: true}, "client-other-ca"); err != nil {
		return nil, err
	}
	if p.clientExpired, _, err = issue(p.ca, testpki.LeafOptions{CommonName: "cloud-api-adaptor", Client: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}, "client-expired"); err != nil {
		return nil, err
	}
	return p, nil
}

// startForwarder starts f, registers its kill, and makes it the current forwarder.
func (e *env) startForwarder(f agentchain.Forwarder) error {
	p, err := f.Start(30 * time.Second)
	if err != nil {
		return err
	}
	e.cleanup.Add(p.Kill)
	e.fwdProc = p
	return nil
}

// stopExpectZero sends SIGTERM and wants exit code 0 within 15 s.
func stopExpectZero(p *harness.Process) error {
	if p == nil {
		return fmt.Errorf("not running")
	}
	select {
	case <-p.Exited():
		return fmt.Errorf("%s had already exited: %v", p.Name, p.Running())
	default:
	}
	code, err := agentchain.Stop(p, 15*time.Second)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s exited with %d, want 0\n%s", p.Name, code, p.LogTail(15))
	}
	return nil
}
