package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"pp/agentchain"
	"pp/harness"
	"pp/testpki"
	"pp/wire"
)

// autoTLS runs a second adaptor in auto-TLS mode (no certificate flags, -tls-dir): it keeps its own
// CA there and gives its proxy a client certificate from it. Standing in for the user-data
// delivery, the test issues the forwarder a server certificate for the instance name from that CA.
func (e *env) autoTLS(r *harness.Runner, forwarderBin string) {
	dir := filepath.Join(e.dir, "auto")
	tlsDir := filepath.Join(dir, "tls")
	const pod, id = "auto-pod", "a7c3e9f1d2b4a6c8e0f1a2b3c4d5e6f7"
	var adaptor *agentchain.Adaptor
	var fwd agentchain.Forwarder
	ok := r.Run("auto_tls/adaptor_creates_ca", func() error {
		port, err := agentchain.FreePort()
		if err != nil {
			return err
		}
		fwd = agentchain.Forwarder{Bin: forwarderBin, Port: port, AgentSock: e.agent.Socket, PodNetns: podNetns,
			Config: filepath.Join(dir, "no-apf.json"), Name: "auto-forwarder"}
		adaptor, err = agentchain.StartAdaptor(e.adaptorBin, dir, port, "-tls-dir", tlsDir)
		if err != nil {
			return err
		}
		e.cleanup.Add(adaptor.Proc.Kill)
		for name, want := range map[string]os.FileMode{"ca.crt": 0, "ca.key": 0o600} {
			fi, err := os.Stat(filepath.Join(tlsDir, name))
			if err != nil {
				return err
			}
			if want != 0 && fi.Mode().Perm() != want {
				return fmt.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), want)
			}
			if fi.Mode().Perm()&0o022 != 0 {
				return fmt.Errorf("%s is writable by group or others (%v)", name, fi.Mode().Perm())
			}
		}
		ca, err := testpki.LoadCA(filepath.Join(tlsDir, "ca.crt"), filepath.Join(tlsDir, "ca.key"))
		if err != nil {
			return err
		}
		name := agentchain.InstanceName(pod, id)
		leaf, err := ca.Issue(testpki.LeafOptions{CommonName: name, DNSNames: []string{name}})
		if err != nil {
			return err
		}
		files, err := leaf.Write(dir, "auto-server")
		if err != nil {
			return err
		}
		fwd.TLS = &agentchain.TLSFiles{CA: filepath.Join(tlsDir, "ca.crt"), Cert: files.Cert, Key: files.Key}
		p, err := fwd.Start(30 * time.Second)
		if err != nil {
			return err
		}
		e.cleanup.Add(p.Kill)
		return nil
	})
	if !ok {
		if adaptor != nil {
			fmt.Printf("---- auto-TLS adaptor output (last 30 lines) ----\n%s\n", adaptor.Proc.LogTail(30))
		}
		return
	}
	r.Run("auto_tls/start_vm_and_call_through_chain", func() error {
		path, err := adaptor.CreateVM(agentchain.SandboxRequest(id, pod, "0"))
		if err != nil {
			return fmt.Errorf("CreateVM: %w", err)
		}
		if err := adaptor.StartVM(id, 120*time.Second); err != nil {
			return fmt.Errorf("StartVM (server certificate issued for %q): %w\n%s", agentchain.InstanceName(pod, id), err, adaptor.Proc.LogTail(20))
		}
		c, err := agentchain.DialAgent(path)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), callBound)
		defer cancel()
		if err := c.Call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{Service: "auto-tls"}, &wire.HealthCheckResponse{}); err != nil {
			return fmt.Errorf("Health/Check: %w", err)
		}
		if !e.agentSawProbe("auto-tls") {
			return fmt.Errorf("the call succeeded but the agent did not see it")
		}
		// No GPUs asked for (default_gpus "0"): the pod netns is joined, but no CDI annotation.
		req := &wire.CreateContainerRequest{ContainerId: "auto-ctr", OCI: &wire.Spec{
			Annotations: map[string]string{"io.kubernetes.cri.container-type": "container"},
			Linux:       &wire.Linux{Namespaces: []*wire.LinuxNamespace{{Type: "pid"}}}}}
		if err := c.Call(ctx, wire.AgentService, wire.MethodCreateContainer, req, &wire.Empty{}); err != nil {
			return fmt.Errorf("CreateContainer: %w", err)
		}
		_, got, err := findBy(e.agent, wire.MethodCreateContainer, func() *wire.CreateContainerRequest { return &wire.CreateContainerRequest{} },
			func(m *wire.CreateContainerRequest) bool { return m.ContainerId == "auto-ctr" })
		if err != nil {
			return err
		}
		if v, ok := got.OCI.GetAnnotations()[cdiKey]; ok {
			return fmt.Errorf("CDI annotation %s=%q added although the pod asked for no GPUs", cdiKey, v)
		}
		if n := got.OCI.GetLinux().GetNamespaces(); len(n) != 2 || n[1].Type != "network" || n[1].Path != podNetns {
			return fmt.Errorf("namespaces at the agent %v, want [pid, network %s]", n, podNetns)
		}
		if err := adaptor.StopVM(id); err != nil {
			return fmt.Errorf("StopVM: %w", err)
		}
		if _, err := os.Lstat(adaptor.SandboxDir(id)); !os.IsNotExist(err) {
			return fmt.Errorf("%s left after StopVM", adaptor.SandboxDir(id))
		}
		return nil
	})
	r.Run("auto_tls/adaptor_sigterm_exits_0", func() error { return stopExpectZero(adaptor.Proc) })
}
