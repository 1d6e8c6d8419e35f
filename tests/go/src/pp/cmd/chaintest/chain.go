package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pp/agentchain"
	"pp/agentstandin"
	"pp/harness"
	"pp/ttrpccheck"
	"pp/wire"
)

const (
	callBound  = 60 * time.Second // the deadline of any call whose deadline is not the point
	cdiKey     = "cdi.k8s.io/peer-pods"
	cdiValue   = "nvidia.com/gpu=all"
	caseMDKey  = "x-chain-case"
	fixedWireT = 60 * time.Second // timeout_nano the large-message checks put on the wire
)

type fixedTimeoutKey struct{}

// fixTimeout puts a fixed timeout_nano on calls that ask for one, so a request's exact frame size
// is known in advance (the Go client otherwise sends the time left, whose varint length varies).
func fixTimeout(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response, _ *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
	if d, ok := ctx.Value(fixedTimeoutKey{}).(time.Duration); ok {
		req.TimeoutNano = d.Nanoseconds()
	}
	return invoke(ctx, req, resp)
}

func (e *env) call(ctx context.Context, service, method string, req, resp proto.Message) error {
	return e.shim.Call(ctx, service, method, req, resp)
}

func bounded(md ttrpc.MD) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), callBound)
	if md != nil {
		ctx = ttrpc.WithMetadata(ctx, md)
	}
	return ctx, cancel
}

// chainChecks brings the sandbox up and checks every kind of call; false when the chain never came
// up (the later chain checks are then skipped).
func (e *env) chainChecks(r *harness.Runner) bool {
	r.Run("chain/create_vm", func() error {
		path, err := e.adaptor.CreateVM(agentchain.SandboxRequest(e.sandboxID, e.podName, "1"))
		if err != nil {
			return err
		}
		if want := e.adaptor.SandboxDir(e.sandboxID) + "/agent.ttrpc"; path != want {
			return fmt.Errorf("agentSocketPath %q, want %q", path, want)
		}
		e.agentSocket = path
		return nil
	})
	checksBefore := len(e.agent.CallsTo(wire.MethodCheck))
	if !r.Run("chain/start_vm_checks_health_through_chain", func() error {
		if err := e.adaptor.StartVM(e.sandboxID, 120*time.Second); err != nil {
			return fmt.Errorf("StartVM: %w", err)
		}
		if n := len(e.agent.CallsTo(wire.MethodCheck)); n <= checksBefore {
			return fmt.Errorf("StartVM returned OK but the agent saw no grpc.Health/Check")
		}
		fi, err := os.Stat(e.agentSocket)
		if err != nil {
			return fmt.Errorf("after StartVM: %w", err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			return fmt.Errorf("%s: mode %v, want a socket with 0600", e.agentSocket, fi.Mode())
		}
		return nil
	}) {
		return false
	}
	if !r.Run("chain/shim_dials_agent_socket", func() error {
		conn, err := net.Dial("unix", e.agentSocket)
		if err != nil {
			return err
		}
		e.shim = ttrpc.NewClient(conn, ttrpc.WithUnaryClientInterceptor(fixTimeout))
		e.cleanup.Add(func() { e.shim.Close() })
		return nil
	}) {
		return false
	}
	r.Run("chain/health_check", func() error {
		ctx, cancel := bounded(nil)
		defer cancel()
		var resp wire.HealthCheckResponse
		if err := e.call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{}, &resp); err != nil {
			return err
		}
		if resp.Status != wire.ServingStatusServing {
			return fmt.Errorf("status %d, want SERVING", resp.Status)
		}
		var v wire.VersionCheckResponse
		if err := e.call(ctx, wire.HealthService, wire.MethodHealthVersion, &wire.CheckRequest{}, &v); err != nil {
			return fmt.Errorf("Health/Version: %w", err)
		}
		if v.AgentVersion == "" {
			return fmt.Errorf("Health/Version: empty agent_version")
		}
		return nil
	})
	r.Run("chain/create_sandbox_drops_dns", e.createSandbox)
	r.Run("chain/create_container_replaces_netns_adds_cdi", func() error { return e.createContainer(true) })
	r.Run("chain/create_container_appends_netns_adds_cdi", func() error { return e.createContainer(false) })
	r.Run("chain/start_container_bytes_and_metadata_intact", e.startContainer)
	r.Run("chain/every_other_method_passes_untouched", e.passthrough)
	r.Run("chain/concurrent_64_calls_one_connection", e.concurrent64)
	r.Run("chain/request_4MiB_frame_exact_limit", func() error { return e.largeRequest(0) })
	r.Run("chain/request_near_4MiB", func() error { return e.largeRequest(64 << 10) })
	r.Run("chain/reply_4MiB_frame_exact_limit", func() error { return e.largeReply(0) })
	r.Run("chain/reply_near_4MiB", func() error { return e.largeReply(64 << 10) })
	return true
}

// findBy returns the last recorded call of method whose payload decodes into msg and satisfies ok.
func findBy[M proto.Message](a *agentstandin.Agent, method string, fresh func() M, ok func(M) bool) (agentstandin.Call, M, error) {
	var found M
	call, err := a.Find(method, func(c agentstandin.Call) bool {
		m := fresh()
		if proto.Unmarshal(c.Payload, m) != nil || !ok(m) {
			return false
		}
		found = m
		return true
	})
	return call, found, err
}

// roundTrip is msg as the agent would decode it if nothing changed on the way.
func roundTrip[M proto.Message](msg M, fresh func() M) (M, error) {
	b, err := proto.Marshal(msg)
	if err != nil {
		return fresh(), err
	}
	out := fresh()
	return out, proto.Unmarshal(b, out)
}

func expectMD(got ttrpc.MD, want ttrpc.MD) error {
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			return fmt.Errorf("metadata %q: agent got %q, sent %q (all metadata at the agent: %v)", k, got[k], v, got)
		}
	}
	return nil
}

func (e *env) createSandbox() error {
	req := &wire.CreateSandboxRequest{
		Hostname: e.podName,
		Dns:      []string{"nameserver 10.96.0.10", "search default.svc.cluster.local svc.cluster.local", "options ndots:5"},
		Storages: []*wire.Storage{{Driver: "image_guest_pull", DriverOptions: []string{`image_guest_pull={"metadata":{}}`},
			Source: "pause", Fstype: "overlay", Options: []string{"ro"}, MountPoint: "/run/kata-containers/sandbox/pause", Shared: true}},
		SandboxPidns:  true,
		SandboxId:     e.sandboxID,
		GuestHookPath: "/usr/share/oci/hooks",
		KernelModules: []*wire.KernelModule{{Name: "nvidia", Parameters: []string{"NVreg_EnableGpuFirmware=1"}}},
	}
	md := ttrpc.MD{caseMDKey: {"create-sandbox"}, "traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	ctx, cancel := bounded(md)
	defer cancel()
	if err := e.call(ctx, wire.AgentService, wire.MethodCreateSandbox, req, &wire.Empty{}); err != nil {
		return err
	}
	fresh := func() *wire.CreateSandboxRequest { return &wire.CreateSandboxRequest{} }
	call, got, err := findBy(e.agent, wire.MethodCreateSandbox, fresh, func(m *wire.CreateSandboxRequest) bool { return m.SandboxId == e.sandboxID })
	if err != nil {
		return err
	}
	want, err := roundTrip(req, fresh)
	if err != nil {
		return err
	}
	want.Dns = nil
	if len(got.Dns) != 0 {
		return fmt.Errorf("agent still got dns %q", got.Dns)
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("other fields changed:\n agent got %v\n want      %v", got, want)
	}
	return expectMD(call.MD, md)
}

func (e *env) createContainer(withNetns bool) error {
	id := "ctr-append"
	namespaces := []*wire.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "mount"}}
	var annotations map[string]string
	if withNetns {
		id = "ctr-replace"
		namespaces = []*wire.LinuxNamespace{{Type: "pid"}, {Type: "network", Path: "/var/run/netns/cni-0b1c2d3e"},
			{Type: "ipc"}, {Type: "uts"}, {Type: "mount"}}
		annotations = map[string]string{
			"io.kubernetes.cri.container-type":                 "container",
			"io.kubernetes.cri.sandbox-id":                     e.sandboxID,
			"io.katacontainers.config.hypervisor.default_gpus": "1",
		}
	}
	req := &wire.CreateContainerRequest{
		ContainerId: id,
		ExecId:      id,
		StringUser:  &wire.StringUser{Uid: "0", Gid: "0", AdditionalGids: []string{"10", "11"}},
		Devices:     []*wire.Device{{Id: "dev0", Type: "c", VmPath: "/dev/null", ContainerPath: "/dev/null", Options: []string{"rw"}}},
		Storages: []*wire.Storage{{Driver: "image_guest_pull", Source: "docker.io/library/busybox:latest",
			Fstype: "overlay", MountPoint: "/run/kata-containers/" + id + "/rootfs"}},
		OCI: &wire.Spec{
			Version:     "1.1.0",
			Process:     &wire.Process{Args: []string{"sh", "-c", "sleep 1"}, Env: []string{"PATH=/bin:/usr/bin"}, Cwd: "/"},
			Root:        &wire.Root{Path: "/run/kata-containers/" + id + "/rootfs", Readonly: true},
			Hostname:    e.podName,
			Mounts:      []*wire.Mount{{Destination: "/proc", Source: "proc", Type: "proc", Options: []string{"nosuid", "noexec"}}},
			Annotations: annotations,
			Linux: &wire.Linux{
				Sysctl:        map[string]string{"net.ipv4.ip_forward": "1"},
				CgroupsPath:   "/kubepods/besteffort/pod1/" + id,
				Namespaces:    namespaces,
				MaskedPaths:   []string{"/proc/kcore", "/proc/keys"},
				ReadonlyPaths: []string{"/proc/sys"},
			},
		},
		SandboxPidns: true,
		StdoutPort:   1025,
	}
	md := ttrpc.MD{caseMDKey: {"create-container-" + id}, "multi": {"one", "two"}}
	ctx, cancel := bounded(md)
	defer cancel()
	if err := e.call(ctx, wire.AgentService, wire.MethodCreateContainer, req, &wire.Empty{}); err != nil {
		return err
	}
	fresh := func() *wire.CreateContainerRequest { return &wire.CreateContainerRequest{} }
	call, got, err := findBy(e.agent, wire.MethodCreateContainer, fresh, func(m *wire.CreateContainerRequest) bool { return m.ContainerId == id })
	if err != nil {
		return err
	}
	want, err := roundTrip(req, fresh)
	if err != nil {
		return err
	}
	if got.OCI == nil || got.OCI.Linux == nil {
		return fmt.Errorf("agent got no OCI.Linux: %v", got)
	}
	// Namespaces: the others in their order, and exactly one network namespace: the pod's.
	var others, network []*wire.LinuxNamespace
	for _, ns := range got.OCI.Linux.Namespaces {
		if ns.Type == "network" {
			network = append(network, ns)
		} else {
			others = append(others, ns)
		}
	}
	var wantOthers []*wire.LinuxNamespace
	for _, ns := range want.OCI.Linux.Namespaces {
		if ns.Type != "network" {
			wantOthers = append(wantOthers, ns)
		}
	}
	if len(network) != 1 || network[0].Path != podNetns {
		return fmt.Errorf("network namespaces at the agent %v, want exactly [{network %s}] (all: %v)", network, podNetns, got.OCI.Linux.Namespaces)
	}
	if !reflect.DeepEqual(others, wantOthers) {
		return fmt.Errorf("other namespaces at the agent %v, want %v", others, wantOthers)
	}
	// Annotations: all we sent plus the CDI one.
	if got.OCI.Annotations[cdiKey] != cdiValue {
		return fmt.Errorf("annotation %s = %q at the agent, want %q (all: %v)", cdiKey, got.OCI.Annotations[cdiKey], cdiValue, got.OCI.Annotations)
	}
	if want.OCI.Annotations == nil {
		want.OCI.Annotations = map[string]string{}
	}
	want.OCI.Annotations[cdiKey] = cdiValue
	if !reflect.DeepEqual(got.OCI.Annotations, want.OCI.Annotations) {
		return fmt.Errorf("annotations at the agent %v, want %v", got.OCI.Annotations, want.OCI.Annotations)
	}
	// Everything else exactly as sent.
	got.OCI.Linux.Namespaces, want.OCI.Linux.Namespaces = nil, nil
	got.OCI.Annotations, want.OCI.Annotations = nil, nil
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("other fields changed:\n agent got %v\n want      %v", got, want)
	}
	return expectMD(call.MD, md)
}

func (e *env) startContainer() error {
	req := &wire.StartContainerRequest{ContainerId: "ctr-replace"}
	sent, _ := proto.Marshal(req)
	md := ttrpc.MD{caseMDKey: {"start-container"}, "traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"multi": {"b", "a", "b"}}
	ctx, cancel := context.WithTimeout(ttrpc.WithMetadata(context.Background(), md), 45*time.Second)
	defer cancel()
	var resp wire.RawMessage
	if err := e.call(ctx, wire.AgentService, wire.MethodStartContainer, req, &resp); err != nil {
		return err
	}
	call, err := e.agent.Find(wire.MethodStartContainer, func(c agentstandin.Call) bool {
		v, _ := c.MD.Get(caseMDKey)
		return len(v) == 1 && v[0] == "start-container"
	})
	if err != nil {
		return fmt.Errorf("%w (metadata lost on the way?)", err)
	}
	if call.Service != wire.AgentService {
		return fmt.Errorf("agent saw service %q", call.Service)
	}
	if !bytes.Equal(call.Payload, sent) {
		return fmt.Errorf("payload at the agent %x, sent %x", call.Payload, sent)
	}
	if !bytes.Equal(resp.Data, sent) {
		return fmt.Errorf("reply payload %x, the agent sent %x", resp.Data, sent)
	}
	if err := expectMD(call.MD, md); err != nil {
		return err
	}
	if call.Timeout <= 0 || call.Timeout > 45*time.Second {
		return fmt.Errorf("agent saw a remaining deadline of %v; the shim sent 45 s", call.Timeout)
	}
	return nil
}

// passthrough sends each method not covered elsewhere an arbitrary (but valid) payload with an
// unknown field; the stand-in echoes it, so both directions must be byte-identical.
func (e *env) passthrough() error {
	special := map[string]bool{wire.MethodCreateSandbox: true, wire.MethodCreateContainer: true,
		"ReadStdout": true, "ReadStderr": true, wire.MethodCopyFile: true}
	var failures []string
	for _, m := range wire.AgentMethods {
		if special[m] {
			continue
		}
		body, _ := proto.Marshal(&wire.StartContainerRequest{ContainerId: "passthrough-" + m})
		body = append(body, 0xf8, 0x07, 0x2a) // field 127, varint 42: unknown to every message
		md := ttrpc.MD{caseMDKey: {"passthrough-" + m}}
		ctx, cancel := bounded(md)
		var resp wire.RawMessage
		err := e.call(ctx, wire.AgentService, m, &wire.RawMessage{Data: body}, &resp)
		cancel()
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", m, err))
			continue
		}
		if !bytes.Equal(resp.Data, body) {
			failures = append(failures, fmt.Sprintf("%s: reply %x, want %x", m, resp.Data, body))
			continue
		}
		call, err := e.agent.Find(m, func(c agentstandin.Call) bool { return bytes.Equal(c.Payload, body) })
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: agent never got the exact payload (%v)", m, err))
			continue
		}
		if err := expectMD(call.MD, md); err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", m, err))
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d methods: %v", len(failures), failures)
	}
	return nil
}

// concurrent64: 64 ReadStdout calls at once on the shim's one connection. The stand-in holds each
// until all 64 have arrived (a barrier), so they must all be in flight through the chain at the
// same time; each reply must be its own.
func (e *env) concurrent64() error {
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cid := fmt.Sprintf("concurrent-%02d", i)
			size := 1000 + 997*i
			ctx, cancel := bounded(ttrpc.MD{agentstandin.BarrierKey: {fmt.Sprintf("conc64:%d", n)}})
			defer cancel()
			var resp wire.ReadStreamResponse
			if err := e.call(ctx, wire.AgentService, "ReadStdout", &wire.ReadStreamRequest{ContainerId: cid, Len: uint32(size)}, &resp); err != nil {
				errs[i] = fmt.Errorf("%s: %w", cid, err)
				return
			}
			if !bytes.Equal(resp.Data, agentstandin.Pattern(cid, size)) {
				errs[i] = fmt.Errorf("%s: got %d bytes that are not its own reply", cid, len(resp.Data))
			}
		}(i)
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d calls failed, first: %v", len(failed), n, failed[0])
	}
	return nil
}

// requestFrameSize is the data length of the Request frame the Go client sends for req.
func requestFrameSize(service, method string, payload int) int {
	return proto.Size(&ttrpc.Request{Service: service, Method: method, Payload: make([]byte, payload), TimeoutNano: fixedWireT.Nanoseconds()})
}

// largeRequest sends CopyFile whose Request frame carries exactly 4 MiB - slack bytes of data.
func (e *env) largeRequest(slack int) error {
	target := wire.MaxData - slack
	req := &wire.CopyFileRequest{Path: "/run/kata-containers/shared/containers/big.bin", FileMode: 0o644, DirMode: 0o755, Uid: 0, Gid: 0}
	size := func(n int) int {
		req.Data = make([]byte, n)
		req.FileSize = int64(n)
		return requestFrameSize(wire.AgentService, wire.MethodCopyFile, proto.Size(req))
	}
	n := target - 64
	for i := 0; i < 8 && size(n) != target; i++ {
		n += target - size(n)
	}
	if got := size(n); got != target {
		return fmt.Errorf("test bug: cannot fit a Request frame of exactly %d bytes (closest %d)", target, got)
	}
	req.Data = agentstandin.Pattern("copyfile", n)
	sent, _ := proto.Marshal(req)
	ctx, cancel := bounded(ttrpc.MD(nil))
	defer cancel()
	ctx = context.WithValue(ctx, fixedTimeoutKey{}, fixedWireT)
	if err := e.call(ctx, wire.AgentService, wire.MethodCopyFile, req, &wire.Empty{}); err != nil {
		return fmt.Errorf("CopyFile with a %d-byte frame: %w", target, err)
	}
	want := sha256.Sum256(sent)
	_, err := e.agent.Find(wire.MethodCopyFile, func(c agentstandin.Call) bool { return sha256.Sum256(c.Payload) == want })
	if err != nil {
		var sizes []int
		for _, c := range e.agent.CallsTo(wire.MethodCopyFile) {
			sizes = append(sizes, len(c.Payload))
		}
		return fmt.Errorf("agent never got the exact %d-byte payload (payload sizes it got: %v)", len(sent), sizes)
	}
	return nil
}

// largeReply asks ReadStdout for as many bytes as make the Response frame exactly 4 MiB - slack.
func (e *env) largeReply(slack int) error {
	target := wire.MaxData - slack
	ok := status.New(codes.OK, "").Proto() // what the Go server puts in a successful Response
	size := func(n int) int {
		p := proto.Size(&wire.ReadStreamResponse{Data: make([]byte, n)})
		return proto.Size(&ttrpc.Response{Status: ok, Payload: make([]byte, p)})
	}
	n := target - 64
	for i := 0; i < 8 && size(n) != target; i++ {
		n += target - size(n)
	}
	if got := size(n); got != target {
		return fmt.Errorf("test bug: cannot fit a Response frame of exactly %d bytes (closest %d)", target, got)
	}
	cid := fmt.Sprintf("big-reply-%d", slack)
	ctx, cancel := bounded(nil)
	defer cancel()
	var resp wire.ReadStreamResponse
	if err := e.call(ctx, wire.AgentService, "ReadStdout", &wire.ReadStreamRequest{ContainerId: cid, Len: uint32(n)}, &resp); err != nil {
		return fmt.Errorf("ReadStdout with a %d-byte reply frame: %w", target, err)
	}
	if !bytes.Equal(resp.Data, agentstandin.Pattern(cid, n)) {
		return fmt.Errorf("reply of %d bytes differs from the %d bytes the agent sent", len(resp.Data), n)
	}
	return nil
}

// restartChecks: SIGTERM the forwarder under a call in flight, then bring it back; the shim keeps
// its one agent connection throughout.
func (e *env) restartChecks(r *harness.Runner) {
	r.Run("forwarder_restart/in_flight_call_fails_unavailable", func() error {
		for len(e.agent.Sleeping()) > 0 {
			<-e.agent.Sleeping()
		}
		// The deadline is the promptness bound: the call must fail with UNAVAILABLE before it.
		ctx, cancel := context.WithTimeout(ttrpc.WithMetadata(context.Background(),
			ttrpc.MD{agentstandin.SleepKey: {"90000"}, caseMDKey: {"in-flight"}}), 20*time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			errc <- e.call(ctx, wire.AgentService, wire.MethodStartContainer, &wire.StartContainerRequest{ContainerId: "sleeper"}, &wire.Empty{})
		}()
		select {
		case c := <-e.agent.Sleeping():
			if c.Method != wire.MethodStartContainer {
				return fmt.Errorf("unexpected sleeping call %s", c.Method)
			}
		case err := <-errc:
			return fmt.Errorf("the call ended before reaching the agent: %v", err)
		case <-time.After(15 * time.Second):
			return fmt.Errorf("the call did not reach the agent within 15 s")
		}
		code, stopErr := agentchain.Stop(e.fwdProc, 15*time.Second)
		err := <-errc
		if stopErr != nil {
			return fmt.Errorf("forwarder did not exit on SIGTERM with a relay open: %v", stopErr)
		}
		if err := harness.ExpectCode(err, codes.Unavailable); err != nil {
			return fmt.Errorf("in-flight call when the forwarder went away: %w", err)
		}
		if code != 0 {
			return fmt.Errorf("forwarder exited %d on SIGTERM, want 0", code)
		}
		return nil
	})
	r.Run("forwarder_restart/call_while_down_succeeds_after_restart", func() error {
		if e.fwdProc.Running() == nil {
			return fmt.Errorf("forwarder still running (previous scenario failed)")
		}
		ctx, cancel := bounded(ttrpc.MD{caseMDKey: {"while-down"}})
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			errc <- e.call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{Service: "while-down"}, &wire.HealthCheckResponse{})
		}()
		select { // the call waits for the forwarder; it must not fail at once
		case err := <-errc:
			if err != nil {
				return fmt.Errorf("a call made while the forwarder was down failed before it came back: %w", err)
			}
			return fmt.Errorf("a call made while the forwarder was down succeeded without it")
		case <-time.After(500 * time.Millisecond):
		}
		if err := e.startForwarder(e.fwd); err != nil {
			return fmt.Errorf("restarting the forwarder: %w", err)
		}
		if err := <-errc; err != nil {
			return fmt.Errorf("call made while the forwarder was down: %w", err)
		}
		return nil
	})
	r.Run("forwarder_restart/same_connection_works_after", func() error {
		if err := e.fwdProc.Running(); err != nil {
			if err := e.startForwarder(e.fwd); err != nil {
				return fmt.Errorf("restarting the forwarder: %w", err)
			}
		}
		md := ttrpc.MD{caseMDKey: {"after-restart"}}
		ctx, cancel := bounded(md)
		defer cancel()
		req := &wire.StartContainerRequest{ContainerId: "after-restart"}
		if err := e.call(ctx, wire.AgentService, wire.MethodStartContainer, req, &wire.Empty{}); err != nil {
			return err
		}
		sent, _ := proto.Marshal(req)
		_, err := e.agent.Find(wire.MethodStartContainer, func(c agentstandin.Call) bool { return bytes.Equal(c.Payload, sent) })
		return err
	})
}

// genericChecks run the ttrpc checks every server of ours passes, through agent.ttrpc: the answers
// come from the proxy or from the Go agent behind the chain, and the connection stays usable.
func (e *env) genericChecks(r *harness.Runner) {
	t := ttrpccheck.Target{Socket: e.agentSocket, Service: wire.HealthService, Method: wire.MethodCheck, Request: &wire.CheckRequest{}}
	r.Run("chain/garbage_frame_invalid_argument_connection_usable", func() error { return ttrpccheck.Unparsable(t) })
	r.Run("chain/create_sandbox_garbage_payload", func() error { return e.garbagePayload(wire.MethodCreateSandbox) })
	r.Run("chain/create_container_garbage_payload", func() error { return e.garbagePayload(wire.MethodCreateContainer) })
	r.Run("chain/ttrpc/unknown_service", func() error { return ttrpccheck.UnknownService(t) })
	r.Run("chain/ttrpc/unknown_method", func() error { return ttrpccheck.UnknownMethod(t) })
	r.Run("chain/ttrpc/raw_response_shape", func() error { return ttrpccheck.ResponseShape(t) })
	r.Run("chain/ttrpc/raw_even_stream_id", func() error { return ttrpccheck.EvenStreamID(t) })
	r.Run("chain/ttrpc/raw_oversize_frame", func() error { return ttrpccheck.Oversize(t) })
}

func (e *env) stopChecks(r *harness.Runner) {
	r.Run("chain/stop_vm_removes_socket_and_pod_dir", func() error {
		if err := e.adaptor.StopVM(e.sandboxID); err != nil {
			return err
		}
		if _, err := os.Lstat(e.agentSocket); !os.IsNotExist(err) {
			return fmt.Errorf("%s still exists after StopVM (%v)", e.agentSocket, err)
		}
		if _, err := os.Lstat(e.adaptor.SandboxDir(e.sandboxID)); !os.IsNotExist(err) {
			return fmt.Errorf("%s still exists after StopVM (%v)", e.adaptor.SandboxDir(e.sandboxID), err)
		}
		return nil
	})
	r.Run("chain/shim_connection_ends_after_stop", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		err := e.call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{}, &wire.HealthCheckResponse{})
		if err == nil {
			return fmt.Errorf("a call on the old agent connection still succeeded after StopVM")
		}
		if harness.Code(err) == codes.DeadlineExceeded {
			return fmt.Errorf("a call on the old agent connection hung after StopVM: %v", err)
		}
		return nil
	})
	r.Run("chain/stop_vm_while_a_call_waits_for_the_forwarder", e.stopWhileRedialing)
	r.Run("adaptor_restart/running_sandbox_agent_path_resumes", e.adaptorRestart)
	r.Peer = e.adaptor.Proc // the restarted adaptor, if it was restarted
}

// startSandbox creates and starts a sandbox of its own (with the forwarder running) and returns its
// agent socket.
func (e *env) startSandbox(id, pod string) (string, error) {
	path, err := e.adaptor.CreateVM(agentchain.SandboxRequest(id, pod, "0"))
	if err != nil {
		return "", fmt.Errorf("CreateVM: %w", err)
	}
	if e.fwdProc.Running() != nil {
		if err := e.startForwarder(e.fwd); err != nil {
			return "", err
		}
	}
	if err := e.adaptor.StartVM(id, 120*time.Second); err != nil {
		return "", fmt.Errorf("StartVM: %w", err)
	}
	return path, nil
}

// stopWhileRedialing: the forwarder is gone (the VM is going away) and a shim call waits for the
// proxy to redial when StopVM arrives. The call must end with an error, StopVM must clean up, and
// the adaptor must stay up afterwards (the proxy's redial must not outlive the proxy).
func (e *env) stopWhileRedialing() error {
	const id, pod = "stopwait-0001", "stopwait-pod"
	path, err := e.startSandbox(id, pod)
	if err != nil {
		return err
	}
	c, err := agentchain.DialAgent(path)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{}, &wire.HealthCheckResponse{}); err != nil {
		return fmt.Errorf("first call: %w", err)
	}
	if err := stopExpectZero(e.fwdProc); err != nil {
		return fmt.Errorf("stopping the forwarder: %w", err)
	}
	defer func() {
		if e.adaptor.Proc.Running() == nil {
			e.startForwarder(e.fwd)
		}
	}()
	errc := make(chan error, 1)
	go func() {
		errc <- c.Call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{Service: "stopwait"}, &wire.HealthCheckResponse{})
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("the call did not wait for the forwarder: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := e.adaptor.StopVM(id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	callErr := <-errc
	if callErr == nil {
		return fmt.Errorf("the waiting call succeeded without a forwarder")
	}
	if harness.Code(callErr) == codes.DeadlineExceeded {
		return fmt.Errorf("the waiting call hung after StopVM: %v", callErr)
	}
	if _, err := os.Lstat(e.adaptor.SandboxDir(id)); !os.IsNotExist(err) {
		return fmt.Errorf("%s left after StopVM", e.adaptor.SandboxDir(id))
	}
	// The proxy's redial backoff is at most 1 s: give a leftover redial the chance to fire.
	select {
	case <-e.adaptor.Proc.Exited():
		return fmt.Errorf("adaptor died after StopVM with a call waiting for the forwarder")
	case <-time.After(3 * time.Second):
	}
	return nil
}

// garbagePayload sends a method that a relay rewrites (CreateSandbox at the forwarder,
// CreateContainer at both) a payload that is not a protobuf. Either the relay refuses it with
// INVALID_ARGUMENT, or it passes the bytes on untouched (the agent then decides); anything else is
// wrong, and the connection must stay usable.
func (e *env) garbagePayload(method string) error {
	garbage := []byte{0xff, 0xff, 0xff}
	md := ttrpc.MD{caseMDKey: {"garbage-" + method}}
	ctx, cancel := bounded(md)
	defer cancel()
	var resp wire.RawMessage
	err := e.call(ctx, wire.AgentService, method, &wire.RawMessage{Data: garbage}, &resp)
	_, found := e.agent.Find(method, func(c agentstandin.Call) bool { return bytes.Equal(c.Payload, garbage) })
	switch {
	case err == nil && found == nil:
		fmt.Printf("  (%s with a garbage payload: passed through untouched)\n", method)
	case err == nil:
		return fmt.Errorf("OK, but the agent never got the garbage bytes unchanged: %v", found)
	default:
		if err := harness.ExpectCodeMessage(err, codes.InvalidArgument); err != nil {
			return err
		}
		fmt.Printf("  (%s with a garbage payload: %v)\n", method, err)
	}
	var h wire.HealthCheckResponse
	if err := e.call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{}, &h); err != nil {
		return fmt.Errorf("connection unusable afterwards: %w", err)
	}
	return nil
}

// adaptorRestart: the adaptor is stopped (SIGTERM) and started again with the same pods dir and
// TLS material while a sandbox runs. Its record survives, the agent proxy comes back at the same
// agent.ttrpc path, and a new shim connection reaches the agent through the forwarder; StopVM then
// cleans up as usual.
func (e *env) adaptorRestart() error {
	const id, pod = "restart-0001", "restart-pod"
	path, err := e.startSandbox(id, pod)
	if err != nil {
		return err
	}
	check := func(what string) error {
		c, err := agentchain.DialAgent(path)
		if err != nil {
			return fmt.Errorf("%s: dialing %s: %w", what, path, err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req := &wire.CheckRequest{Service: "restart-" + what}
		if err := c.Call(ctx, wire.HealthService, wire.MethodCheck, req, &wire.HealthCheckResponse{}); err != nil {
			return fmt.Errorf("%s: Health/Check: %w", what, err)
		}
		sent, _ := proto.Marshal(req)
		_, err = e.agent.Find(wire.MethodCheck, func(c agentstandin.Call) bool { return bytes.Equal(c.Payload, sent) })
		return err
	}
	if err := check("before"); err != nil {
		return err
	}
	if err := stopExpectZero(e.adaptor.Proc); err != nil {
		return fmt.Errorf("stopping the adaptor: %w", err)
	}
	if _, err := agentchain.DialAgent(path); err == nil {
		return fmt.Errorf("%s still accepts with the adaptor stopped", path)
	}
	a, err := agentchain.StartAdaptor(e.adaptorBin, e.adaptorDir, e.fwd.Port, e.adaptorArgs...)
	if err != nil {
		return fmt.Errorf("restarting the adaptor: %w", err)
	}
	e.cleanup.Add(a.Proc.Kill)
	e.adaptor = a
	// The proxy is restarted right after the daemon starts listening: allow it a moment to appear.
	var last error
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(100 * time.Millisecond) {
		if last = check("after"); last == nil {
			break
		}
		if a.Proc.Running() != nil {
			return fmt.Errorf("adaptor exited after the restart\n%s", a.Proc.LogTail(20))
		}
	}
	if last != nil {
		return fmt.Errorf("no agent path after the adaptor restarted: %w\n%s", last, a.Proc.LogTail(20))
	}
	if err := e.adaptor.StopVM(id); err != nil {
		return fmt.Errorf("StopVM after the restart: %w", err)
	}
	if _, err := os.Lstat(e.adaptor.SandboxDir(id)); !os.IsNotExist(err) {
		return fmt.Errorf("%s left after StopVM", e.adaptor.SandboxDir(id))
	}
	return nil
}
