// Warm pools with real pod VMs: a second adaptor, configured with a pool of two VMs launched with
// the test's initdata, in a state directory of its own.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"pp/agentchain"
	"pp/harness"
	"pp/testpki"
	"pp/wire"
)

const warmPoolSize = 2

type poolRecord struct {
	Name       string   `json:"name"`
	Pool       string   `json:"pool"`
	State      string   `json:"state"`
	InstanceID string   `json:"instanceId"`
	IPs        []string `json:"ips"`
}

type sandboxRecord struct {
	InstanceName string   `json:"instanceName"`
	InstanceID   string   `json:"instanceID"`
	IPs          []string `json:"ips"`
}

type warm struct {
	*env
	bin, dir string
	cleanup  *harness.Cleanup
	r        *harness.Runner
	ca       *testpki.Authority
}

func gzipBase64(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func (w *warm) poolDir() string { return filepath.Join(w.dir, "pool") }

func (w *warm) start(withPools bool) error {
	a := &agentchain.Adaptor{Socket: filepath.Join(w.dir, "hypervisor.sock"), PodsDir: filepath.Join(w.dir, "pods")}
	bridge, err := libvirtBridge()
	if err != nil {
		return err
	}
	args := []string{"libvirt", "-host-interface", bridge, "-socket", a.Socket, "-pods-dir", a.PodsDir,
		"-tls-dir", filepath.Join(w.dir, "tls"), "-node-name", "e2e-warm-node", "-proxy-timeout", "4m",
		"-log-level", "debug", "-reconcile-interval", reconcileInterval, "-reconcile-grace", reconcileGrace,
		"-probe-port", "0", "-health-port", "0", "-firmware", "none", "-cpu", "1", "-memory", "384",
		"-ip-timeout", "4m"}
	if withPools {
		// Checks far apart: the claim-failure scenario makes a VM stop answering and must find it
		// still "ready" (the unit tests cover the replacement of a VM that fails its check).
		pools := fmt.Sprintf(`[{"name": "e2e", "size": %d, "initdata": %q}]`, warmPoolSize, gzipBase64(initdata))
		args = append(args, "-warm-pools", pools, "-warm-pool-check-interval", "10m")
	}
	p, err := harness.Start("adaptor-warm", w.bin, args...)
	if err != nil {
		return err
	}
	a.Proc = p
	if err := harness.WaitDial(a.Socket, p, 60*time.Second); err != nil {
		p.Kill()
		return fmt.Errorf("%w\n%s", err, p.LogTail(20))
	}
	w.cleanup.Add(p.Kill)
	w.adaptor = a
	w.r.Peer = p
	return nil
}

func (w *warm) poolVMs() (map[string]poolRecord, error) {
	out := map[string]poolRecord{}
	entries, err := os.ReadDir(w.poolDir())
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(w.poolDir(), e.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		var r poolRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out[r.Name] = r
	}
	return out, nil
}

// waitReady waits until the pool holds `n` ready VMs and nothing booting; returns them.
func (w *warm) waitReady(n int, within time.Duration) (map[string]poolRecord, error) {
	deadline := time.Now().Add(within)
	for {
		vms, err := w.poolVMs()
		if err == nil {
			ready := 0
			for _, vm := range vms {
				if vm.State == "ready" {
					ready++
				}
			}
			if ready == n && len(vms) == n {
				return vms, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pool not at %d ready VMs within %v: %v (%v)", n, within, vms, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (w *warm) record(id string) (sandboxRecord, error) {
	var r sandboxRecord
	b, err := os.ReadFile(filepath.Join(w.adaptor.PodsDir, id, "sandbox.json"))
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	return r, err
}

// peerCert connects to a VM's port 15150 with `client` and returns the certificate the VM shows
// (verified against the adaptor's CA for `name`), after one byte was exchanged-or-refused: a
// server that refuses our certificate under TLS 1.3 says so on the first read.
func (w *warm) peerCert(ip, name string, client tls.Certificate) (*x509.Certificate, error) {
	conf := &tls.Config{RootCAs: w.ca.Pool(), ServerName: name, Certificates: []tls.Certificate{client}}
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort(ip, "15150"), conf)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	var one [1]byte
	if _, err := conn.Read(one[:]); err != nil {
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			return nil, fmt.Errorf("after the handshake: %w", err)
		}
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}

func (w *warm) leaf(name string, client bool) (tls.Certificate, error) {
	l, err := w.ca.Issue(testpki.LeafOptions{CommonName: name, DNSNames: []string{name}, Client: client})
	if err != nil {
		return tls.Certificate{}, err
	}
	return l.TLS()
}

func domainNames() ([]string, error) {
	out, err := agentchain.Virsh("list", "--all", "--name")
	return lines(out), err
}

func runWarmPool(e *env, bin, root string, cleanup *harness.Cleanup, r *harness.Runner) {
	w := &warm{env: e, bin: bin, dir: filepath.Join(root, "warm"), cleanup: cleanup, r: r}
	// The main adaptor has been shut down by now: the peer under test is the warm one (w.start).
	r.Peer = nil
	var first map[string]poolRecord
	if !r.Run("warm/pool_fills_with_vms_that_answer_only_as_themselves", func() error {
		if err := os.MkdirAll(w.dir, 0o700); err != nil {
			return err
		}
		started := time.Now()
		if err := w.start(true); err != nil {
			return err
		}
		var err error
		if first, err = w.waitReady(warmPoolSize, 6*time.Minute); err != nil {
			return err
		}
		fmt.Printf("  (pool of %d ready %.1f s after the adaptor started)\n", warmPoolSize, time.Since(started).Seconds())
		if w.ca, err = testpki.LoadCA(filepath.Join(w.dir, "tls", "ca.crt"), filepath.Join(w.dir, "tls", "ca.key")); err != nil {
			return err
		}
		client, err := w.leaf("adaptor", true)
		if err != nil {
			return err
		}
		for name, vm := range first {
			if !strings.HasPrefix(name, "podvm-pool-e2e-") || len(vm.IPs) == 0 {
				return fmt.Errorf("pool VM %+v", vm)
			}
			cert, err := w.peerCert(vm.IPs[0], name, client)
			if err != nil {
				return fmt.Errorf("pool VM %s: %w", name, err)
			}
			if len(cert.DNSNames) != 1 || cert.DNSNames[0] != name {
				return fmt.Errorf("pool VM %s shows a certificate for %v", name, cert.DNSNames)
			}
		}
		return nil
	}) {
		return
	}

	r.Run("warm/claim_serves_the_pod_through_the_agent_path_with_its_own_identity", func() error {
		s := newSandbox("e2e00000000000w1a1", "warm-one")
		if err := w.create(s, map[string]string{wire.AnnotInitData: initdata}); err != nil {
			return err
		}
		start := time.Now()
		if err := w.adaptor.StartVM(s.id, bootDeadline); err != nil {
			return fmt.Errorf("StartVM: %w", err)
		}
		took := time.Since(start)
		if err := health(s.socket); err != nil {
			return err
		}
		fmt.Printf("  (warm StartVM: claimed, agent answered through the forwarder in %.3f s)\n", took.Seconds())
		rec, err := w.record(s.id)
		if err != nil {
			return err
		}
		pool, ok := first[rec.InstanceName]
		if !ok || pool.InstanceID != rec.InstanceID {
			return fmt.Errorf("sandbox runs on %s (%s), not a pool VM of %v", rec.InstanceName, rec.InstanceID, first)
		}
		// The VM now shows the pod's certificate (issued at the claim, naming its instance), not its
		// pool certificate.
		client, err := w.leaf("adaptor", true)
		if err != nil {
			return err
		}
		cert, err := w.peerCert(rec.IPs[0], rec.InstanceName, client)
		if err != nil {
			return fmt.Errorf("the claimed VM: %w", err)
		}
		if cert.DNSNames[0] != rec.InstanceName {
			return fmt.Errorf("claimed VM shows a certificate for %v", cert.DNSNames)
		}
		// Another pod's credentials (a pod VM's server key pair from the same CA) are no client.
		other, err := w.leaf("podvm-other-pod-12345678", false)
		if err != nil {
			return err
		}
		if _, err := w.peerCert(rec.IPs[0], rec.InstanceName, other); err == nil {
			return fmt.Errorf("the claimed VM accepted another pod VM's certificate as a client")
		}
		// Nor a certificate from another CA.
		stranger, err := testpki.NewCA("stranger")
		if err != nil {
			return err
		}
		sl, err := stranger.Issue(testpki.LeafOptions{CommonName: "adaptor", Client: true})
		if err != nil {
			return err
		}
		st, _ := sl.TLS()
		if _, err := w.peerCert(rec.IPs[0], rec.InstanceName, st); err == nil {
			return fmt.Errorf("the claimed VM accepted a client certificate of another CA")
		}
		if err := w.adaptor.StopVM(s.id); err != nil {
			return fmt.Errorf("StopVM: %w", err)
		}
		doms, _ := domainNames()
		for _, d := range doms {
			if d == rec.InstanceName {
				return fmt.Errorf("claimed VM %s still exists after StopVM", d)
			}
		}
		return nil
	})

	r.Run("warm/two_concurrent_claims_get_two_distinct_vms", func() error {
		ready, err := w.waitReady(warmPoolSize, 6*time.Minute) // refilled after the first claim
		if err != nil {
			return err
		}
		ids := []string{"e2e00000000000w2a1", "e2e00000000000w2a2"}
		sbs := make([]*sandbox, len(ids))
		for i, id := range ids {
			sbs[i] = newSandbox(id, "warm-two-"+strconv.Itoa(i))
			if err := w.create(sbs[i], map[string]string{wire.AnnotInitData: initdata}); err != nil {
				return err
			}
		}
		defer func() {
			for _, id := range ids {
				_ = w.adaptor.StopVM(id)
			}
		}()
		var wg sync.WaitGroup
		errs := make([]error, len(ids))
		for i := range ids {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if errs[i] = w.adaptor.StartVM(ids[i], bootDeadline); errs[i] == nil {
					errs[i] = health(sbs[i].socket)
				}
			}(i)
		}
		wg.Wait()
		seen := map[string]bool{}
		for i, id := range ids {
			if errs[i] != nil {
				return fmt.Errorf("%s: %w", id, errs[i])
			}
			rec, err := w.record(id)
			if err != nil {
				return err
			}
			if _, ok := ready[rec.InstanceName]; !ok {
				return fmt.Errorf("%s runs on %s, not one of the ready VMs", id, rec.InstanceName)
			}
			if seen[rec.InstanceID] {
				return fmt.Errorf("two sandboxes got VM %s", rec.InstanceName)
			}
			seen[rec.InstanceID] = true
		}
		return nil
	})

	r.Run("warm/a_miss_on_initdata_boots_a_fresh_vm", func() error {
		s := newSandbox("e2e00000000000w3a1", "warm-miss")
		if err := w.create(s, nil); err != nil { // no initdata: the pool's VMs were launched with some
			return err
		}
		defer w.adaptor.StopVM(s.id)
		if err := w.adaptor.StartVM(s.id, bootDeadline); err != nil {
			return fmt.Errorf("StartVM: %w", err)
		}
		if err := health(s.socket); err != nil {
			return err
		}
		rec, err := w.record(s.id)
		if err != nil {
			return err
		}
		if rec.InstanceName != agentchain.InstanceName(s.pod, s.id) {
			return fmt.Errorf("a sandbox without the pool's initdata runs on %s", rec.InstanceName)
		}
		return w.adaptor.StopVM(s.id)
	})

	r.Run("warm/kill9_with_ready_and_claimed_vms_then_restart_loses_neither", func() error {
		if _, err := w.waitReady(warmPoolSize, 6*time.Minute); err != nil {
			return err
		}
		s := newSandbox("e2e00000000000w4a1", "warm-kill")
		if err := w.create(s, map[string]string{wire.AnnotInitData: initdata}); err != nil {
			return err
		}
		defer w.adaptor.StopVM(s.id)
		if err := w.adaptor.StartVM(s.id, bootDeadline); err != nil {
			return fmt.Errorf("StartVM: %w", err)
		}
		ready, err := w.waitReady(warmPoolSize, 6*time.Minute)
		if err != nil {
			return err
		}
		before, _ := domainNames()
		w.adaptor.Proc.Kill()
		if err := w.start(true); err != nil {
			return fmt.Errorf("restart after kill -9: %w", err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			err := health(s.socket)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the claimed VM's agent path 60 s after the restart: %w", err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		// Checked again at the start, and still the same ready VMs; no VM was made or lost.
		time.Sleep(5 * time.Second)
		after, err := w.waitReady(warmPoolSize, 60*time.Second)
		if err != nil {
			return err
		}
		for name := range ready {
			if _, ok := after[name]; !ok {
				return fmt.Errorf("ready VM %s lost in the restart (now %v)", name, after)
			}
		}
		now, _ := domainNames()
		sort.Strings(before)
		sort.Strings(now)
		if strings.Join(before, ",") != strings.Join(now, ",") {
			return fmt.Errorf("domains changed across the restart: %v -> %v", before, now)
		}
		return w.adaptor.StopVM(s.id)
	})

	r.Run("warm/a_claim_that_fails_half_way_falls_back_to_a_fresh_vm_and_leaves_nothing", func() error {
		ready, err := w.waitReady(warmPoolSize, 6*time.Minute)
		if err != nil {
			return err
		}
		// Every ready VM stops answering (its domain destroyed behind the adaptor's back): the claim
		// fails after the VM was taken; the adaptor deletes it and boots the pod a fresh VM.
		for name := range ready {
			if _, err := agentchain.Virsh("destroy", name); err != nil {
				return err
			}
		}
		s := newSandbox("e2e00000000000w5a1", "warm-fail")
		if err := w.create(s, map[string]string{wire.AnnotInitData: initdata}); err != nil {
			return err
		}
		defer w.adaptor.StopVM(s.id)
		if err := w.adaptor.StartVM(s.id, bootDeadline); err != nil {
			return fmt.Errorf("StartVM: %w", err)
		}
		if err := health(s.socket); err != nil {
			return err
		}
		rec, err := w.record(s.id)
		if err != nil {
			return err
		}
		if rec.InstanceName != agentchain.InstanceName(s.pod, s.id) {
			return fmt.Errorf("sandbox runs on %s after a failed claim", rec.InstanceName)
		}
		// The VM taken for the failed claim is no longer the pool's, and nothing of it is left.
		vms, err := w.poolVMs()
		if err != nil {
			return err
		}
		failed := ""
		for name := range ready {
			if _, still := vms[name]; !still {
				failed = name
			}
		}
		if failed == "" {
			return fmt.Errorf("no pool VM was taken for the claim: pool %v", vms)
		}
		vols, _ := agentchain.Virsh("vol-list", w.pool)
		if strings.Contains(vols, failed) {
			return fmt.Errorf("the VM whose claim failed (%s) left volumes: %s", failed, vols)
		}
		if doms, _ := domainNames(); strings.Contains(strings.Join(doms, ","), failed) {
			return fmt.Errorf("the VM whose claim failed (%s) left its domain", failed)
		}
		return w.adaptor.StopVM(s.id)
	})

	r.Run("warm/pools_removed_from_the_configuration_are_drained_and_nothing_is_left", func() error {
		code, err := agentchain.Stop(w.adaptor.Proc, 30*time.Second)
		if err != nil || code != 0 {
			return fmt.Errorf("SIGTERM: exit %d, %v", code, err)
		}
		if vms, _ := w.poolVMs(); len(vms) == 0 {
			return fmt.Errorf("pool VMs were not kept across the shutdown")
		}
		if err := w.start(false); err != nil {
			return err
		}
		if err := w.expectCleanOf(3*time.Minute, true); err != nil {
			return err
		}
		if vms, _ := w.poolVMs(); len(vms) != 0 {
			return fmt.Errorf("pool records left: %v", vms)
		}
		code, err = agentchain.Stop(w.adaptor.Proc, 30*time.Second)
		if err != nil || code != 0 {
			return fmt.Errorf("SIGTERM: exit %d, %v", code, err)
		}
		return nil
	})
}
