// Package agentchain starts the pieces of the agent path for tests and benchmarks: our
// agent-protocol-forwarder and our adaptor (adaptor_test_daemon -test-agent, whose every pod VM is
// at 127.0.0.1), and drives the adaptor as the kata shim does (hypervisor.Hypervisor over ttrpc, a
// new connection per call like the Go shim). Processes are harness.Process values: callers
// register Kill with their harness.Cleanup so every path ends them by pid.
package agentchain

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"

	"pp/harness"
	"pp/wire"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitTCP polls until addr accepts a TCP connection; it fails when p exits first or after timeout.
func WaitTCP(addr string, p *harness.Process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("%s: %v", p.Name, p.Running())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept on %s within %v: %v", p.Name, addr, timeout, err)
		}
	}
}

// TLSFiles is a CA certificate plus one's own certificate and key, as files.
type TLSFiles struct{ CA, Cert, Key string }

func (t *TLSFiles) args() []string {
	if t == nil {
		return []string{"-disable-tls"}
	}
	return []string{"-ca-cert-file", t.CA, "-cert-file", t.Cert, "-cert-key", t.Key}
}

// Forwarder describes how to start agent-protocol-forwarder; Start may be called again after the
// process ended (a restart on the same port).
type Forwarder struct {
	Bin       string
	Port      int
	AgentSock string
	PodNetns  string    // -pod-namespace
	Config    string    // -config; a file that does not exist is fine
	TLS       *TLSFiles // nil: -disable-tls
	Name      string
}

func (f *Forwarder) Addr() string { return "127.0.0.1:" + strconv.Itoa(f.Port) }

// Start runs the forwarder and waits until it accepts TCP connections.
func (f *Forwarder) Start(timeout time.Duration) (*harness.Process, error) {
	args := []string{"-listen", f.Addr(), "-kata-agent-socket", f.AgentSock, "-pod-namespace", f.PodNetns, "-config", f.Config}
	args = append(args, f.TLS.args()...)
	name := f.Name
	if name == "" {
		name = "agent-protocol-forwarder"
	}
	p, err := harness.Start(name, f.Bin, args...)
	if err != nil {
		return nil, err
	}
	if err := WaitTCP(f.Addr(), p, timeout); err != nil {
		p.Kill()
		return nil, fmt.Errorf("%w\n%s", err, p.LogTail(20))
	}
	return p, nil
}

// Stop sends SIGTERM and waits for the exit; it kills the process if it does not end in time.
func Stop(p *harness.Process, timeout time.Duration) (int, error) {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		select {
		case <-p.Exited():
		default:
			return 0, err
		}
	}
	code, err := p.WaitExit(timeout)
	if err != nil {
		p.Kill()
	}
	return code, err
}

// Adaptor is a running adaptor_test_daemon and where it keeps things.
type Adaptor struct {
	Proc    *harness.Process
	Socket  string
	PodsDir string
}

// StartAdaptor runs `<bin> test -test-agent` with its socket and pods dir under dir, the given
// forwarder port, a 30 s proxy timeout and the extra (TLS) arguments, and waits until it accepts.
func StartAdaptor(bin, dir string, forwarderPort int, extra ...string) (*Adaptor, error) {
	a := &Adaptor{Socket: filepath.Join(dir, "hypervisor.sock"), PodsDir: filepath.Join(dir, "pods")}
	if err := os.MkdirAll(a.PodsDir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"test", "-test-agent", "-socket", a.Socket, "-pods-dir", a.PodsDir,
		"-forwarder-port", strconv.Itoa(forwarderPort), "-proxy-timeout", "30s"}
	args = append(args, extra...)
	p, err := harness.Start("adaptor", bin, args...)
	if err != nil {
		return nil, err
	}
	a.Proc = p
	if err := harness.WaitDial(a.Socket, p, 30*time.Second); err != nil {
		p.Kill()
		return nil, fmt.Errorf("%w\n%s", err, p.LogTail(20))
	}
	return a, nil
}

// SandboxDir is <pods-dir>/<id>.
func (a *Adaptor) SandboxDir(id string) string { return filepath.Join(a.PodsDir, id) }

// hvCall makes one hypervisor.Hypervisor call on a fresh connection, as the Go shim does.
func (a *Adaptor) hvCall(ctx context.Context, method string, req, resp proto.Message) error {
	conn, err := net.Dial("unix", a.Socket)
	if err != nil {
		return err
	}
	c := ttrpc.NewClient(conn)
	defer c.Close()
	return c.Call(ctx, wire.HypervisorService, method, req, resp)
}

// CreateVM returns agentSocketPath.
func (a *Adaptor) CreateVM(req *wire.CreateVMRequest) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var resp wire.CreateVMResponse
	err := a.hvCall(ctx, wire.MethodCreateVM, req, &resp)
	return resp.AgentSocketPath, err
}

// StartVM with the given deadline (the shim's is 600 s).
func (a *Adaptor) StartVM(id string, deadline time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	return a.hvCall(ctx, wire.MethodStartVM, &wire.StartVMRequest{Id: id}, &wire.StartVMResponse{})
}

func (a *Adaptor) StopVM(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return a.hvCall(ctx, wire.MethodStopVM, &wire.StopVMRequest{Id: id}, &wire.StopVMResponse{})
}

// SandboxRequest is a CreateVM as the shim sends it: all nine annotations, some empty.
func SandboxRequest(id, pod, gpus string) *wire.CreateVMRequest {
	return &wire.CreateVMRequest{
		Id: id,
		Annotations: map[string]string{
			wire.AnnotSandboxName:      pod,
			wire.AnnotSandboxNamespace: "default",
			wire.AnnotMachineType:      "",
			wire.AnnotImage:            "",
			wire.AnnotVCPUs:            "1",
			wire.AnnotMemory:           "2048",
			wire.AnnotInitData:         "",
			wire.AnnotGPUs:             gpus,
			wire.AnnotGPUModel:         "",
		},
	}
}

// DialAgent connects a ttrpc client to an agent socket (agent.ttrpc or the agent's own).
func DialAgent(path string) (*ttrpc.Client, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return ttrpc.NewClient(conn), nil
}

// InstanceName mirrors the adaptor's pod VM naming: podvm-<pod name>-<first 8 chars of the id>,
// lower case, other characters as '-'. The test uses plain names, so no truncation arises.
func InstanceName(pod, id string) string {
	clean := func(s string) string {
		return strings.Map(func(c rune) rune {
			switch {
			case c >= 'A' && c <= 'Z':
				return c - 'A' + 'a'
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
				return c
			}
			return '-'
		}, s)
	}
	if len(id) > 8 {
		id = id[:8]
	}
	return "podvm-" + clean(pod) + "-" + clean(id)
}

// Virsh runs `virsh -q -c qemu:///system <args>` (inside the test's network namespace, where
// libvirt-netns.sh runs the caller) and returns its trimmed output.
func Virsh(args ...string) (string, error) {
	out, err := exec.Command("virsh", append([]string{"-q", "-c", "qemu:///system"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("virsh %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// TestAgentHealth checks the agent through the whole chain behind an agent socket: Health/Check must
// say SERVING and Health/Version must come from podvm-test-agent (the TEST AGENT of the test image
// and of the cloud fakes' instances), within `timeout`.
func TestAgentHealth(socket string, timeout time.Duration) error {
	c, err := DialAgent(socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var h wire.HealthCheckResponse
	if err := c.Call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{}, &h); err != nil {
		return fmt.Errorf("Health/Check: %w", err)
	}
	if h.Status != wire.ServingStatusServing {
		return fmt.Errorf("Health/Check status %d, want SERVING", h.Status)
	}
	var v wire.VersionCheckResponse
	if err := c.Call(ctx, wire.HealthService, wire.MethodHealthVersion, &wire.CheckRequest{}, &v); err != nil {
		return fmt.Errorf("Health/Version: %w", err)
	}
	if !strings.Contains(v.AgentVersion, "podvm-test-agent") {
		return fmt.Errorf("Health/Version answered %q: not the test agent", v.AgentVersion)
	}
	return nil
}
