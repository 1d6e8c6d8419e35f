// Command cloude2e drives the real cloud-api-adaptor with one of its cloud providers (aws, azure,
// gcp) against that cloud's loopback fake (tests/providers/fakes), as the kata shim does:
//
//	Go ttrpc client (as the shim) -> hypervisor.sock: cloud-api-adaptor <provider>
//	  -> HTTPS (the provider's real wire format, signed or with bearer tokens) -> the cloud fake
//	  -> the fake's "instance": instance_runner.sh runs process-user-data on the user-data the
//	     provider sent, the TEST AGENT (podvm-test-agent) and agent-protocol-forwarder on the
//	     instance's own loopback address
//	  -> agent.ttrpc: the adaptor's agent proxy -> TCP + mTLS -> that forwarder -> the test agent
//
//	cloude2e -provider aws -adaptor <cloud-api-adaptor> -bin-dir <dir of our binaries> -fakes <dir>
//
// Scenarios: the whole lifecycle with a check that the fake holds no instance (nor NIC, disk)
// and no instance process is left; no capacity for any allowed type (StartVM says what it tried,
// nothing left); four sandboxes at once; kill -9 of the adaptor under a running pod, then a
// restart that resumes its agent path. Each prints "PASS name" or "FAIL name: why".
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"pp/agentchain"
	"pp/harness"
	"pp/wire"
)

const startDeadline = 120 * time.Second

type env struct {
	provider   string
	adaptorBin string
	dir        string
	fakeURL    string
	ca         string
	fake       *harness.Process
	adaptor    *agentchain.Adaptor
	runnerRoot string
	cfg        providerConfig
	http       *http.Client
}

func main() {
	provider := flag.String("provider", "", "aws, azure or gcp")
	adaptorBin := flag.String("adaptor", "", "cloud-api-adaptor binary")
	binDir := flag.String("bin-dir", "", "where process-user-data, agent-protocol-forwarder and podvm-test-agent are")
	fakes := flag.String("fakes", "", "tests/providers/fakes")
	timeout := flag.Duration("timeout", 10*time.Minute, "fail and clean up if the run takes longer")
	flag.Parse()
	cfg, ok := configs[*provider]
	if !ok || *adaptorBin == "" || *binDir == "" || *fakes == "" {
		fmt.Fprintln(os.Stderr, "cloude2e: -provider aws|azure|gcp -adaptor <path> -bin-dir <dir> -fakes <dir> are required")
		os.Exit(2)
	}
	os.Exit(run(*provider, cfg, *adaptorBin, *binDir, *fakes, *timeout))
}

func run(provider string, cfg providerConfig, adaptorBin, binDir, fakes string, timeout time.Duration) int {
	var cleanup harness.Cleanup
	defer cleanup.Run()
	cleanup.ExitOnSignal()
	cleanup.Watchdog(timeout)

	dir, err := os.MkdirTemp("", "ppcloud-")
	if err != nil {
		fmt.Println("FAIL setup:", err)
		return 1
	}
	cleanup.Add(func() { os.RemoveAll(dir) })
	e := &env{provider: provider, adaptorBin: adaptorBin, dir: dir, cfg: cfg, runnerRoot: filepath.Join(dir, "instances")}
	runner := filepath.Join(fakes, "instance_runner.sh")
	// Whatever happens, no instance process outlives the test.
	cleanup.Add(func() { e.stopInstances(runner) })

	var r harness.Runner
	if !r.Run("setup/fake_"+provider, func() error {
		if err := os.MkdirAll(e.runnerRoot, 0o700); err != nil {
			return err
		}
		os.Setenv("RUNNER_ROOT", e.runnerRoot)
		os.Setenv("PP_BIN_DIR", binDir)
		portFile := filepath.Join(dir, "fake.port")
		p, err := harness.Start("fake", "/usr/bin/python3", append([]string{filepath.Join(fakes, cfg.fake),
			"--port-file", portFile, "--tls-dir", filepath.Join(dir, "tls"), "--runner", runner}, cfg.fakeArgs(e)...)...)
		if err != nil {
			return err
		}
		e.fake = p
		cleanup.Add(func() { agentchain.Stop(p, 10*time.Second) })
		port, err := waitFile(portFile, p, 30*time.Second)
		if err != nil {
			return err
		}
		e.fakeURL = "https://127.0.0.1:" + port
		e.ca = filepath.Join(dir, "tls", "ca.pem")
		return e.makeHTTPClient()
	}) {
		return r.Summary()
	}
	if !r.Run("setup/adaptor_accepts", func() error {
		a, err := e.startAdaptor()
		if err != nil {
			return err
		}
		e.adaptor = a
		cleanup.Add(func() { e.adaptor.Proc.Kill() })
		return nil
	}) {
		return r.Summary()
	}
	r.Peer = e.adaptor.Proc

	r.Run("lifecycle/create_start_health_stop_leaves_nothing", e.lifecycle)
	r.Run("failure/no_capacity_for_any_type_says_what_it_tried_and_leaves_nothing", e.noCapacity)
	r.Run("load/four_sandboxes_at_once", e.fourAtOnce)
	r.Run("crash/kill9_under_a_running_pod_then_restart_resumes_its_agent_path", func() error {
		return e.killUnderRunningPod(&cleanup, &r)
	})
	r.Run("shutdown/adaptor_sigterm_exits_0", func() error {
		code, err := agentchain.Stop(e.adaptor.Proc, 30*time.Second)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("exit code %d", code)
		}
		return nil
	})
	if r.Failed() {
		fmt.Printf("---- adaptor output (last 80 lines) ----\n%s\n----\n", e.adaptor.Proc.LogTail(80))
		fmt.Printf("---- fake output (last 40 lines) ----\n%s\n----\n", e.fake.LogTail(40))
	}
	return r.Summary()
}

func waitFile(path string, p *harness.Process, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b)), nil
		}
		if err := p.Running(); err != nil {
			return "", fmt.Errorf("%s exited: %v\n%s", p.Name, err, p.LogTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("%s did not write %s within %v\n%s", p.Name, path, timeout, p.LogTail(20))
}

func (e *env) makeHTTPClient() error {
	pem, err := os.ReadFile(e.ca)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", e.ca)
	}
	e.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return nil
}

type fakeStats struct {
	Calls       map[string]int   `json:"calls"`
	Connections int              `json:"connections"`
	Throttled   int              `json:"throttled"`
	Instances   []map[string]any `json:"instances"`
	// Resources made with an instance that must go with it (Azure's NICs, disks, public IPs).
	NICs      []string `json:"nics"`
	Disks     []string `json:"disks"`
	PublicIPs []string `json:"public_ips"`
}

func (e *env) stats() (*fakeStats, error) {
	resp, err := e.http.Get(e.fakeURL + "/_fake/stats")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s fakeStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (e *env) setFaults(rules string) error { return e.control("/_fake/faults", rules) }

// control posts to one of the fake's test endpoints.
func (e *env) control(path, body string) error {
	resp, err := e.http.Post(e.fakeURL+path, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
	}
	return nil
}

func (e *env) startAdaptor() (*agentchain.Adaptor, error) {
	a := &agentchain.Adaptor{Socket: filepath.Join(e.dir, "hypervisor.sock"), PodsDir: filepath.Join(e.dir, "pods")}
	for k, v := range e.cfg.env(e) {
		os.Setenv(k, v)
	}
	args := append([]string{e.provider,
		"-probe-port", "0", "-health-port", "0", // no fixed host ports in tests
		"-socket", a.Socket, "-pods-dir", a.PodsDir, "-tls-dir", filepath.Join(e.dir, "adaptor-tls"),
		"-node-name", "cloud-e2e-node", "-proxy-timeout", "60s", "-log-level", "debug"}, e.cfg.args(e)...)
	p, err := harness.Start("adaptor", e.adaptorBin, args...)
	if err != nil {
		return nil, err
	}
	a.Proc = p
	if err := harness.WaitDial(a.Socket, p, 60*time.Second); err != nil {
		p.Kill()
		return nil, fmt.Errorf("%w\n%s", err, p.LogTail(20))
	}
	return a, nil
}

// leftovers: instances (and their NICs and disks) in the fake, instance processes, pods dir entries.
func (e *env) leftovers() ([]string, error) {
	var left []string
	s, err := e.stats()
	if err != nil {
		return nil, err
	}
	for _, inst := range s.Instances {
		left = append(left, fmt.Sprintf("fake instance %v", inst))
	}
	for _, n := range s.NICs {
		left = append(left, "fake NIC "+n)
	}
	for _, d := range s.Disks {
		left = append(left, "fake disk "+d)
	}
	for _, ip := range s.PublicIPs {
		left = append(left, "fake public IP "+ip)
	}
	if ents, err := os.ReadDir(e.runnerRoot); err == nil {
		for _, ent := range ents {
			left = append(left, "instance processes of "+ent.Name())
		}
	}
	if ents, err := os.ReadDir(e.adaptor.PodsDir); err == nil {
		for _, ent := range ents {
			left = append(left, "pods dir entry "+ent.Name())
		}
	}
	return left, nil
}

func (e *env) expectClean(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		left, err := e.leftovers()
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("left behind: %s", strings.Join(left, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *env) stopInstances(runner string) {
	ents, _ := os.ReadDir(e.runnerRoot)
	for _, ent := range ents {
		exec.Command(runner, "stop", ent.Name()).Run()
	}
}

func request(id, pod string) *wire.CreateVMRequest {
	req := agentchain.SandboxRequest(id, pod, "0")
	req.Annotations[wire.AnnotVCPUs] = "2"
	req.Annotations[wire.AnnotMemory] = "4096"
	return req
}

func health(socket string) error { return agentchain.TestAgentHealth(socket, 30*time.Second) }

func (e *env) startPod(id, pod string) (string, error) {
	socket, err := e.adaptor.CreateVM(request(id, pod))
	if err != nil {
		return "", fmt.Errorf("CreateVM %s: %w", id, err)
	}
	start := time.Now()
	if err := e.adaptor.StartVM(id, startDeadline); err != nil {
		return "", fmt.Errorf("StartVM %s: %w", id, err)
	}
	fmt.Printf("  (%s: StartVM answered in %.2f s)\n", id, time.Since(start).Seconds())
	return socket, nil
}

func (e *env) lifecycle() error {
	const id = "cloude2e000000001a"
	socket, err := e.startPod(id, "lifecycle")
	defer e.adaptor.StopVM(id)
	if err != nil {
		return err
	}
	s, err := e.stats()
	if err != nil {
		return err
	}
	if len(s.Instances) == 0 {
		return fmt.Errorf("StartVM answered but the fake holds no instance")
	}
	if err := e.cfg.checkInstance(s.Instances); err != nil {
		return err
	}
	if err := health(socket); err != nil {
		return err
	}
	if err := e.adaptor.StopVM(id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	if err := e.expectClean(20 * time.Second); err != nil {
		return err
	}
	s, err = e.stats()
	if err != nil {
		return err
	}
	fmt.Printf("  (fake: %d connections for %v)\n", s.Connections, s.Calls)
	return nil
}

func (e *env) noCapacity() error {
	const id = "cloude2e000000002b"
	if err := e.control(e.cfg.noCapacity.path, e.cfg.noCapacity.set); err != nil {
		return err
	}
	defer e.control(e.cfg.noCapacity.path, e.cfg.noCapacity.reset)
	if _, err := e.adaptor.CreateVM(request(id, "nocapacity")); err != nil {
		return err
	}
	err := e.adaptor.StartVM(id, startDeadline)
	if err == nil {
		e.adaptor.StopVM(id)
		return fmt.Errorf("StartVM succeeded with no capacity anywhere")
	}
	fmt.Printf("  (StartVM: %v)\n", err)
	for _, want := range e.cfg.triedTypes {
		if !strings.Contains(err.Error(), want) {
			return fmt.Errorf("the error does not name %s among the types tried: %v", want, err)
		}
	}
	if err := e.adaptor.StopVM(id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	return e.expectClean(20 * time.Second)
}

func (e *env) fourAtOnce() error {
	var wg sync.WaitGroup
	errs := make([]error, 4)
	sockets := make([]string, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sockets[i], errs[i] = e.startPod(fmt.Sprintf("cloude2e00000003c%d", i), fmt.Sprintf("four-%d", i))
		}(i)
	}
	wg.Wait()
	var failed []string
	for i := 0; i < 4; i++ {
		if errs[i] == nil {
			errs[i] = health(sockets[i])
		}
		if errs[i] != nil {
			failed = append(failed, errs[i].Error())
		}
	}
	for i := 0; i < 4; i++ {
		if err := e.adaptor.StopVM(fmt.Sprintf("cloude2e00000003c%d", i)); err != nil {
			failed = append(failed, "StopVM: "+err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return e.expectClean(20 * time.Second)
}

func (e *env) killUnderRunningPod(cleanup *harness.Cleanup, r *harness.Runner) error {
	const id = "cloude2e000000004d"
	socket, err := e.startPod(id, "survivor")
	if err != nil {
		e.adaptor.StopVM(id)
		return err
	}
	e.adaptor.Proc.Signal(syscall.SIGKILL)
	e.adaptor.Proc.WaitExit(10 * time.Second)
	a, err := e.startAdaptor()
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	e.adaptor = a
	r.Peer = a.Proc
	cleanup.Add(func() { a.Proc.Kill() })
	// The restarted adaptor reloads the record and serves the same agent socket again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = health(socket)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		e.adaptor.StopVM(id)
		return fmt.Errorf("after the restart: %w", err)
	}
	if err := e.adaptor.StopVM(id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	return e.expectClean(20 * time.Second)
}
