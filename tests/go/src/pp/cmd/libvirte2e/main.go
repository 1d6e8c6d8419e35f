// Command libvirte2e drives the real cloud-api-adaptor with its libvirt provider as the kata shim
// does, with real pod VMs booting the test image under QEMU:
//
//	Go ttrpc client (as the shim) -> hypervisor.sock: cloud-api-adaptor libvirt
//	  -> libvirtd: qcow2 overlay + cidata ISO + domain, DHCP lease
//	  -> agent.ttrpc: the adaptor's agent proxy -> TCP + mTLS (auto mode): agent-protocol-forwarder
//	     in the VM -> the image's TEST AGENT (podvm-test-agent, standing where kata-agent stands)
//
// It must run where libvirt is private to it: deploy/local/libvirt-netns.sh starts libvirtd in a
// network namespace of its own and sets LIBVIRT_URI, LIBVIRT_POOL, LIBVIRT_NET, LIBVIRT_VOL_NAME.
//
//	libvirt-netns.sh --image podvm-test.qcow2 -- libvirte2e -adaptor <cloud-api-adaptor>
//
// Scenarios: the whole lifecycle with a check that no domain, volume, ISO or socket is left; a
// missing base image; a VM that never answers (StartVM fails within the shim's deadline and
// cleans up); the VM destroyed behind the adaptor's back; StopVM during StartVM; four sandboxes at
// once; the pod network (the pod's IP served from inside the VM, both ways); a confidential model
// decrypted into the VM's tmpfs only after attestation, and not when the key is withheld
// (model.go); kill -9 of the adaptor under a running pod and in the middle of a StartVM, then a
// restart; warm pools (warmpool.go): claims, their identity, misses, kill -9, a failed claim,
// draining. Each prints "PASS name" or "FAIL name: why"; the exit code is non-zero on any failure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"pp/agentchain"
	"pp/harness"
	"pp/wire"
)

// bootDeadline is the StartVM deadline of the scenarios that expect a VM to come up: the shim's is
// 600 s; TCG on a loaded 2-core machine boots in tens of seconds.
const bootDeadline = 480 * time.Second

// The adaptor's reconciliation here: often, with a short grace, so that a test sees an orphan go.
const (
	reconcileInterval = "3s"
	reconcileGrace    = "2s"
)

// only: the -only flag (a scenario name prefix; empty: all).
var only string

type env struct {
	adaptor   *agentchain.Adaptor
	probePort int
	pool      string
	base      string
	blank     string
}

func main() {
	adaptorBin := flag.String("adaptor", "", "cloud-api-adaptor binary")
	timeout := flag.Duration("timeout", 25*time.Minute, "fail and clean up if the run takes longer")
	flag.StringVar(&only, "only", "", "run only the scenarios whose name starts with this (after the setup)")
	modelCli := flag.String("model-cli", "", "peerpods-model binary (default: beside -adaptor)")
	fakeKbs := flag.String("fake-kbs", defaultFakeKbs(), "the TEST STAND-IN KBS, tests/attest/fake_kbs.py")
	flag.Parse()
	if *adaptorBin == "" || os.Getenv("LIBVIRT_POOL") == "" {
		fmt.Fprintln(os.Stderr, "libvirte2e: -adaptor <path> is required, and run it under deploy/local/libvirt-netns.sh")
		os.Exit(2)
	}
	if *modelCli == "" {
		*modelCli = filepath.Join(filepath.Dir(*adaptorBin), "peerpods-model")
	}
	os.Exit(run(*adaptorBin, *timeout, modelTools{modelCli: *modelCli, fakeKbs: *fakeKbs}))
}

func run(adaptorBin string, timeout time.Duration, tools modelTools) int {
	var cleanup harness.Cleanup
	defer cleanup.Run()
	cleanup.ExitOnSignal()
	cleanup.Watchdog(timeout)

	dir, err := os.MkdirTemp("", "ppe2e-")
	if err != nil {
		fmt.Println("FAIL setup:", err)
		return 1
	}
	cleanup.Add(func() { os.RemoveAll(dir) })
	e := &env{pool: os.Getenv("LIBVIRT_POOL"), base: os.Getenv("LIBVIRT_VOL_NAME"), blank: "blank.qcow2"}

	var r harness.Runner
	if !r.Run("setup/blank_volume", func() error {
		// A disk that boots nothing: a VM that never gets an address and never answers.
		_, err := agentchain.Virsh("vol-create-as", e.pool, e.blank, "64M", "--format", "qcow2")
		return err
	}) {
		return r.Summary()
	}
	if !r.Run("setup/adaptor_accepts", func() (err error) {
		if e.probePort, err = agentchain.FreePort(); err != nil {
			return err
		}
		e.adaptor, err = startAdaptor(adaptorBin, dir, e.probePort)
		if err == nil {
			cleanup.Add(e.adaptor.Proc.Kill)
		}
		return
	}) {
		return r.Summary()
	}
	r.Peer = e.adaptor.Proc
	if only != "" {
		r.Filter = only
	}

	r.Run("lifecycle/create_start_health_stop_leaves_nothing", e.lifecycle)
	r.Run("network/pod_ip_served_from_the_vm_both_ways_and_nothing_left_after_stopvm", e.podNetwork)
	r.Run("failure/missing_base_image", e.missingImage)
	r.Run("failure/vm_never_answers_startvm_fails_in_deadline_and_cleans_up", e.neverAnswers)
	r.Run("failure/vm_destroyed_behind_the_adaptors_back", e.destroyedBehindBack)
	r.Run("failure/stopvm_during_startvm", e.stopDuringStart)
	r.Run("load/four_sandboxes_at_once", e.fourAtOnce)
	r.Run("metrics/probes_answer_and_metrics_hold_the_lifecycles_values", e.metricsAfterLifecycles)
	r.Run("reconcile/an_orphan_made_behind_the_adaptors_back_is_deleted_after_the_grace", func() error {
		return e.orphanReconciled(dir)
	})
	r.Run("crash/kill9_under_a_running_pod_then_restart_keeps_its_agent_path_and_pod_network", func() error {
		return e.killUnderRunningPod(adaptorBin, dir, &cleanup, &r)
	})
	r.Run("crash/kill9_during_startvm_then_restart_and_stopvm_leave_nothing", func() error {
		return e.killDuringStart(adaptorBin, dir, &cleanup, &r)
	})
	model := &modelWorld{}
	cleanup.Add(func() { model.close(e) })
	r.Run("model/decrypted_into_the_vms_tmpfs_only_after_attestation_digest_seen_inside", func() error {
		return model.loadedAfterAttestation(e, tools, dir)
	})
	r.Run("model/key_withheld_loader_exits_3_with_the_reason_and_no_plaintext", model.keyWithheld)
	r.Run("model/stopvm_leaves_nothing", func() error { return model.stopLeavesNothing(e) })
	model.close(e) // the stand-ins go now, whatever happened above
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
	runWarmPool(e, adaptorBin, dir, &cleanup, &r)
	if r.Failed() {
		fmt.Printf("---- adaptor output (last 80 lines) ----\n%s\n----\n", e.adaptor.Proc.LogTail(80))
	}
	return r.Summary()
}

func startAdaptor(bin, dir string, probePort int) (*agentchain.Adaptor, error) {
	a := &agentchain.Adaptor{Socket: filepath.Join(dir, "hypervisor.sock"), PodsDir: filepath.Join(dir, "pods")}
	// The pod network's tunnels run over the libvirt network's bridge (this netns has no default route).
	bridge, err := libvirtBridge()
	if err != nil {
		return nil, err
	}
	// Small TCG VMs booting with BIOS; auto TLS (the adaptor's own CA under -tls-dir).
	p, err := harness.Start("adaptor", bin, "libvirt", "-host-interface", bridge,
		"-socket", a.Socket, "-pods-dir", a.PodsDir, "-tls-dir", filepath.Join(dir, "tls"),
		"-node-name", "e2e-node", "-proxy-timeout", "4m", "-log-level", "debug",
		"-reconcile-interval", reconcileInterval, "-reconcile-grace", reconcileGrace,
		"-probe-port", strconv.Itoa(probePort), "-health-port", "0",
		"-firmware", "none", "-cpu", "1", "-memory", "384", "-ip-timeout", "4m")
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

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// leftovers lists what a finished sandbox must not leave: pod VM domains, volumes other than the
// base images, and anything in the pods dir (records, agent sockets).
func (e *env) leftovers() ([]string, error) { return e.leftoversOf(true) }

// leftoversOf lists leftover domains and volumes, and the pods dir entries when withRecords.
func (e *env) leftoversOf(withRecords bool) ([]string, error) {
	var left []string
	doms, err := agentchain.Virsh("list", "--all", "--name")
	if err != nil {
		return nil, err
	}
	for _, d := range lines(doms) {
		left = append(left, "domain "+d)
	}
	vols, err := agentchain.Virsh("vol-list", e.pool)
	if err != nil {
		return nil, err
	}
	for _, l := range lines(vols) {
		name := strings.Fields(l)[0]
		if name != e.base && name != e.blank {
			left = append(left, "volume "+name)
		}
	}
	if !withRecords {
		sort.Strings(left)
		return left, nil
	}
	entries, err := os.ReadDir(e.adaptor.PodsDir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, ent := range entries {
		left = append(left, "pods dir entry "+ent.Name())
	}
	sort.Strings(left)
	return left, nil
}

// expectClean waits up to `within` for every leftover to go (cleanup after a failed StartVM runs
// after the shim's deadline has passed).
func (e *env) expectClean(within time.Duration) error { return e.expectCleanOf(within, true) }

func (e *env) expectCleanOf(within time.Duration, withRecords bool) error {
	deadline := time.Now().Add(within)
	for {
		left, err := e.leftoversOf(withRecords)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("left behind: %s", strings.Join(left, ", "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

type sandbox struct {
	id, pod, socket string
}

func newSandbox(id, pod string) *sandbox { return &sandbox{id: id, pod: pod} }

func (s *sandbox) request(extra map[string]string) *wire.CreateVMRequest {
	req := agentchain.SandboxRequest(s.id, s.pod, "0")
	req.Annotations[wire.AnnotVCPUs] = ""
	req.Annotations[wire.AnnotMemory] = ""
	for k, v := range extra {
		req.Annotations[k] = v
	}
	return req
}

func (e *env) create(s *sandbox, extra map[string]string) error {
	path, err := e.adaptor.CreateVM(s.request(extra))
	if err != nil {
		return fmt.Errorf("CreateVM %s: %w", s.id, err)
	}
	s.socket = path
	return nil
}

func health(socket string) error { return agentchain.TestAgentHealth(socket, 60*time.Second) }

// initdata as the kata runtime hands it over (the TOML document itself). The adaptor must deliver
// it as base64(gzip(...)) for process-user-data in the VM, which refuses the whole user-data (and
// the VM never answers) when it cannot decode it.
const initdata = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n" +
	"\"aa.toml\" = \"[token_configs.kbs]\\nurl = \\\"http://127.0.0.1:8080\\\"\\n\"\n"

func (e *env) lifecycle() error {
	s := newSandbox("e2e0000000000001aa", "lifecycle")
	if err := e.create(s, map[string]string{wire.AnnotInitData: initdata}); err != nil {
		return err
	}
	defer e.adaptor.StopVM(s.id) // on a failure below; a no-op after the StopVM of the scenario
	start := time.Now()
	if err := e.adaptor.StartVM(s.id, bootDeadline); err != nil {
		return fmt.Errorf("StartVM: %w", err)
	}
	fmt.Printf("  (StartVM: pod VM booted and its agent answered in %.1f s)\n", time.Since(start).Seconds())
	if fi, err := os.Stat(s.socket); err != nil || fi.Mode().Perm() != 0o600 {
		return fmt.Errorf("agent socket %s: %v (mode %v)", s.socket, err, fi)
	}
	doms, _ := agentchain.Virsh("list", "--name")
	if !strings.Contains(doms, agentchain.InstanceName(s.pod, s.id)) {
		return fmt.Errorf("no running domain %s: %q", agentchain.InstanceName(s.pod, s.id), doms)
	}
	if err := health(s.socket); err != nil {
		return err
	}
	if err := e.adaptor.StopVM(s.id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	return e.expectClean(10 * time.Second)
}

func (e *env) missingImage() error {
	s := newSandbox("e2e0000000000002bb", "noimage")
	if err := e.create(s, map[string]string{wire.AnnotImage: "no-such-image.qcow2"}); err != nil {
		return err
	}
	start := time.Now()
	err := e.adaptor.StartVM(s.id, 120*time.Second)
	if err == nil {
		return fmt.Errorf("StartVM succeeded without a base image")
	}
	if err := harness.ExpectCode(err, codes.FailedPrecondition); err != nil {
		return err
	}
	if !strings.Contains(err.Error(), "no-such-image.qcow2") {
		return fmt.Errorf("the error does not name the missing image: %v", err)
	}
	fmt.Printf("  (refused in %.2f s: %v)\n", time.Since(start).Seconds(), err)
	if err := e.adaptor.StopVM(s.id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	return e.expectClean(10 * time.Second)
}

func (e *env) neverAnswers() error {
	s := newSandbox("e2e0000000000003cc", "silent")
	if err := e.create(s, map[string]string{wire.AnnotImage: e.blank}); err != nil {
		return err
	}
	defer e.adaptor.StopVM(s.id)
	const deadline = 45 * time.Second
	start := time.Now()
	err := e.adaptor.StartVM(s.id, deadline)
	took := time.Since(start)
	if err == nil {
		return fmt.Errorf("StartVM succeeded with a VM that boots nothing")
	}
	if took > deadline+10*time.Second {
		return fmt.Errorf("StartVM took %v, past its %v deadline", took, deadline)
	}
	fmt.Printf("  (StartVM failed after %.1f s: %v)\n", took.Seconds(), err)
	// Before any StopVM, the failed StartVM itself must take the VM and its volumes down (the record
	// stays until StopVM, which the shim always sends).
	if err := e.expectCleanOf(30*time.Second, false); err != nil {
		return fmt.Errorf("after the failed StartVM: %w", err)
	}
	if err := e.adaptor.StopVM(s.id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	return e.expectClean(10 * time.Second)
}

func (e *env) destroyedBehindBack() error {
	s := newSandbox("e2e0000000000004dd", "destroyed")
	if err := e.create(s, nil); err != nil {
		return err
	}
	defer e.adaptor.StopVM(s.id)
	if err := e.adaptor.StartVM(s.id, bootDeadline); err != nil {
		return fmt.Errorf("StartVM: %w", err)
	}
	c, err := agentchain.DialAgent(s.socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{}, &wire.HealthCheckResponse{}); err != nil {
		return fmt.Errorf("first call: %w", err)
	}
	if _, err := agentchain.Virsh("destroy", agentchain.InstanceName(s.pod, s.id)); err != nil {
		return err
	}
	// The shim's next call must end with an error, at the latest at its own deadline (the proxy
	// redials the VM until then: a VM that only restarts its forwarder comes back).
	callCtx, callCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer callCancel()
	callStart := time.Now()
	err = c.Call(callCtx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{}, &wire.HealthCheckResponse{})
	if err == nil {
		return fmt.Errorf("a call to a destroyed VM succeeded")
	}
	if took := time.Since(callStart); took > 35*time.Second {
		return fmt.Errorf("the call to a destroyed VM ended only after %v (its deadline was 30 s)", took)
	}
	fmt.Printf("  (call after the VM was destroyed: %v)\n", err)
	if err := e.adaptor.StopVM(s.id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	return e.expectClean(10 * time.Second)
}

func (e *env) stopDuringStart() error {
	s := newSandbox("e2e0000000000005ee", "stopearly")
	if err := e.create(s, nil); err != nil {
		return err
	}
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- e.adaptor.StartVM(s.id, bootDeadline) }()
	// Stop while the VM boots: once its domain exists.
	name := agentchain.InstanceName(s.pod, s.id)
	for {
		if doms, _ := agentchain.Virsh("list", "--name"); strings.Contains(doms, name) {
			break
		}
		select {
		case err := <-errc:
			return fmt.Errorf("StartVM ended before its domain appeared: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := e.adaptor.StopVM(s.id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	select {
	case err := <-errc:
		if err == nil {
			return fmt.Errorf("StartVM succeeded although StopVM came first")
		}
		fmt.Printf("  (StartVM ended %.1f s after it began: %v)\n", time.Since(start).Seconds(), err)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("StartVM still running 60 s after StopVM")
	}
	return e.expectClean(30 * time.Second)
}

func (e *env) fourAtOnce() error {
	sandboxes := []*sandbox{
		newSandbox("e2e0000000000006f1", "four-a"), newSandbox("e2e0000000000006f2", "four-b"),
		newSandbox("e2e0000000000006f3", "four-c"), newSandbox("e2e0000000000006f4", "four-d"),
	}
	var wg sync.WaitGroup
	errs := make([]error, len(sandboxes))
	start := time.Now()
	for i, s := range sandboxes {
		wg.Add(1)
		go func(i int, s *sandbox) {
			defer wg.Done()
			if err := e.create(s, nil); err != nil {
				errs[i] = err
				return
			}
			if err := e.adaptor.StartVM(s.id, bootDeadline); err != nil {
				errs[i] = fmt.Errorf("%s StartVM: %w", s.pod, err)
				return
			}
			errs[i] = health(s.socket)
		}(i, s)
	}
	wg.Wait()
	fmt.Printf("  (4 pod VMs up and answering in %.1f s)\n", time.Since(start).Seconds())
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", sandboxes[i].pod, err))
		}
	}
	for _, s := range sandboxes {
		if err := e.adaptor.StopVM(s.id); err != nil {
			failed = append(failed, fmt.Sprintf("StopVM %s: %v", s.pod, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return e.expectClean(10 * time.Second)
}

// restartAdaptor kills the adaptor with SIGKILL (no cleanup of its own runs) and starts a new one on
// the same socket, pods dir and TLS directory, as a DaemonSet's restarted container would.
func (e *env) restartAdaptor(bin, dir string, cleanup *harness.Cleanup, r *harness.Runner) error {
	e.adaptor.Proc.Kill()
	a, err := startAdaptor(bin, dir, e.probePort)
	if err != nil {
		return fmt.Errorf("restart after kill -9: %w", err)
	}
	cleanup.Add(a.Proc.Kill)
	e.adaptor = a
	r.Peer = a.Proc
	return nil
}

func (e *env) killUnderRunningPod(bin, dir string, cleanup *harness.Cleanup, r *harness.Runner) error {
	s := newSandbox("e2e0000000000007a1", "killed")
	// With a pod network: its tunnel must outlive the process that built it, and go with StopVM.
	netns, remove, err := makePodNetns()
	if err != nil {
		return err
	}
	defer remove()
	req := s.request(nil)
	req.NetworkNamespacePath = netns
	if s.socket, err = e.adaptor.CreateVM(req); err != nil {
		return fmt.Errorf("CreateVM: %w", err)
	}
	defer func() { _ = e.adaptor.StopVM(s.id) }()
	if err := e.adaptor.StartVM(s.id, bootDeadline); err != nil {
		return fmt.Errorf("StartVM: %w", err)
	}
	if err := health(s.socket); err != nil {
		return fmt.Errorf("before the kill: %w", err)
	}
	if _, err := httpGet("http://"+podIP+":8080/", 90*time.Second); err != nil {
		return fmt.Errorf("the pod IP before the kill: %w", err)
	}
	if err := e.restartAdaptor(bin, dir, cleanup, r); err != nil {
		return err
	}
	// The new process restarts the proxy of every running sandbox on the same agent.ttrpc; a new
	// shim connection then reaches the same VM's agent through the forwarder.
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := health(s.socket)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no agent path 60 s after the restart: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if _, err := httpGet("http://"+podIP+":8080/", 30*time.Second); err != nil {
		return fmt.Errorf("the pod IP after the restart: %w", err)
	}
	if err := e.adaptor.StopVM(s.id); err != nil {
		return fmt.Errorf("StopVM after the restart: %w", err)
	}
	if left := nodeTunnelState(); len(left) > 0 {
		return fmt.Errorf("after StopVM by the restarted adaptor: %s", strings.Join(left, "; "))
	}
	return e.expectClean(10 * time.Second)
}

func (e *env) killDuringStart(bin, dir string, cleanup *harness.Cleanup, r *harness.Runner) error {
	s := newSandbox("e2e0000000000008b2", "midstart")
	if err := e.create(s, nil); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- e.adaptor.StartVM(s.id, bootDeadline) }()
	// Kill as early as the provider has made anything: its first volume (the cidata ISO holds the
	// VM's TLS key), before or just after the domain exists.
	name := agentchain.InstanceName(s.pod, s.id)
	seen := ""
	for seen == "" {
		vols, _ := agentchain.Virsh("vol-list", e.pool)
		for _, l := range lines(vols) {
			if strings.HasPrefix(l, name) {
				seen = strings.Fields(l)[0]
			}
		}
		select {
		case err := <-errc:
			return fmt.Errorf("StartVM ended before any volume appeared: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := e.restartAdaptor(bin, dir, cleanup, r); err != nil {
		return err
	}
	fmt.Printf("  (killed once %s existed)\n", seen)
	<-errc // the shim's StartVM ended with the killed process
	if err := e.adaptor.StopVM(s.id); err != nil {
		return fmt.Errorf("StopVM after the restart: %w", err)
	}
	return e.expectClean(30 * time.Second)
}
