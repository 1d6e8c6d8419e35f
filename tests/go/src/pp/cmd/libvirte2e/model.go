package main

// Confidential model loading with a real pod VM: a model encrypted with peerpods-model reaches the
// VM's memory-backed /run only after the VM attested to a KBS, and not at all when the KBS
// withholds the key.
//
//	this netns, on the libvirt bridge's address (the only address the VM reaches):
//	  fake_kbs.py (TEST STAND-IN KBS, sample TEE accepted, the key as default/model-key/e2e)
//	  an HTTP file server with model.enc (an object store stand-in)
//	pod VM (initdata names the KBS and the key resource):
//	  shim's agent.ttrpc -> adaptor proxy -> mTLS -> forwarder -> TEST AGENT ExecProcess:
//	  peerpods-model-loader --model http://<bridge>/model.enc --output /run/models/model.bin
//
// The test agent's ExecProcess runs the loader directly in the VM (no container; see
// podvm-image/test-agent/test_agent.cc), where a pod's init container would run it.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/ttrpc"

	"pp/agentchain"
	"pp/harness"
	"pp/wire"
)

const (
	modelKeyID    = "kbs:///default/model-key/e2e"
	modelResource = "default/model-key/e2e"
	modelDir      = "/run/models"
)

// modelTools are the programs the scenarios need besides the adaptor.
type modelTools struct {
	modelCli string // peerpods-model
	fakeKbs  string // tests/attest/fake_kbs.py
}

// defaultFakeKbs is tests/attest/fake_kbs.py of the checkout this program was built from.
func defaultFakeKbs() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", "attest", "fake_kbs.py")
}

// bridgeAddr is the node's IPv4 address on the libvirt network: what the pod VMs reach.
func bridgeAddr() (string, error) {
	bridge, err := libvirtBridge()
	if err != nil {
		return "", err
	}
	out, err := sh("ip", "-4", "-o", "addr", "show", "dev", bridge)
	if err != nil {
		return "", err
	}
	for _, f := range strings.Fields(out) {
		if ip, _, err := net.ParseCIDR(f); err == nil && ip.To4() != nil {
			return ip.String(), nil
		}
	}
	return "", fmt.Errorf("no IPv4 address on %s: %q", bridge, out)
}

// fakeKbs is the TEST STAND-IN KBS, killed by pid; its output (the port, then one line per
// request) is kept for failure reports.
type fakeKbs struct {
	proc *harness.Process
	url  string
}

func startFakeKbs(script, host string, args ...string) (*fakeKbs, error) {
	p, err := harness.Start("fake-kbs", "/usr/bin/python3", append([]string{script, "--host", host}, args...)...)
	if err != nil {
		return nil, err
	}
	k := &fakeKbs{proc: p}
	// Its first line is the port; requests are logged only after it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		first := strings.SplitN(p.LogTail(1<<16), "\n", 2)[0]
		if _, err := strconv.Atoi(strings.TrimSpace(first)); err == nil {
			k.url = "http://" + net.JoinHostPort(host, strings.TrimSpace(first))
			return k, nil
		}
		if err := p.Running(); err != nil || time.Now().After(deadline) {
			k.stop()
			return nil, fmt.Errorf("fake_kbs.py printed no port (%v):\n%s", err, p.LogTail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (k *fakeKbs) stop() { k.proc.Kill() }

// tail is the stand-in's last lines, for a failure report.
func (k *fakeKbs) tail() string {
	return "\n---- KBS stand-in (last 10 lines) ----\n" + k.proc.LogTail(10)
}

// events is what the stand-in did, in order ("attested", "released <path>", "refused <path>").
func (k *fakeKbs) events() ([]string, error) {
	body, err := httpGet(k.url+"/stats", 10*time.Second)
	if err != nil {
		return nil, err
	}
	var st struct{ Events []string }
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, err
	}
	return st.Events, nil
}

func (k *fakeKbs) setPolicy(policy string) error {
	resp, err := http.Post(k.url+"/policy", "text/plain", strings.NewReader(policy))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("POST /policy: %s", resp.Status)
	}
	return nil
}

// modelWorld is what the model scenarios share: the stand-ins, the encrypted model and the VM.
type modelWorld struct {
	kbs     *fakeKbs
	files   *http.Server
	baseURL string // http://<bridge>:<port> of the file server
	digest  string // sha256 of the plaintext
	size    int
	s       *sandbox
	agent   *ttrpc.Client
	started bool
}

// close ends whatever is still up: the agent connection, the VM, the stand-ins. Idempotent.
func (w *modelWorld) close(e *env) {
	if w.agent != nil {
		w.agent.Close()
		w.agent = nil
	}
	if w.started {
		_ = e.adaptor.StopVM(w.s.id)
		w.started = false
	}
	if w.files != nil {
		w.files.Close()
		w.files = nil
	}
	if w.kbs != nil {
		w.kbs.stop()
		w.kbs = nil
	}
}

// agentRun runs args in the VM through the test agent; its exit status, stdout and stderr.
func agentRun(c *ttrpc.Client, execID string, within time.Duration, args ...string) (int32, string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	req := &wire.ExecProcessRequest{ContainerId: "model-loader", ExecId: execID, Process: &wire.Process{
		Args: args, Env: []string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cwd: "/"}}
	if err := c.Call(ctx, wire.AgentService, wire.MethodExecProcess, req, &wire.Empty{}); err != nil {
		return 0, "", "", fmt.Errorf("ExecProcess %s: %w", args[0], err)
	}
	var wait wire.WaitProcessResponse
	if err := c.Call(ctx, wire.AgentService, wire.MethodWaitProcess,
		&wire.WaitProcessRequest{ContainerId: "model-loader", ExecId: execID}, &wait); err != nil {
		return 0, "", "", fmt.Errorf("WaitProcess %s: %w", args[0], err)
	}
	read := func(method string) (string, error) {
		var all []byte
		for {
			var resp wire.ReadStreamResponse
			if err := c.Call(ctx, wire.AgentService, method,
				&wire.ReadStreamRequest{ContainerId: "model-loader", ExecId: execID, Len: 65536}, &resp); err != nil {
				return "", fmt.Errorf("%s %s: %w", method, args[0], err)
			}
			if len(resp.Data) == 0 {
				return string(all), nil
			}
			all = append(all, resp.Data...)
		}
	}
	stdout, err := read(wire.MethodReadStdout)
	if err != nil {
		return 0, "", "", err
	}
	stderr, err := read(wire.MethodReadStderr)
	if err != nil {
		return 0, "", "", err
	}
	return wait.Status, stdout, stderr, nil
}

func modelInitdata(kbsURL string) string {
	return "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n" +
		"\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"" + kbsURL + "\"\n'''\n" +
		"\"model-loader.toml\" = '''\nkey-resource = \"" + modelKeyID + "\"\n'''\n"
}

// setup starts the stand-ins, encrypts a model, and boots a pod VM whose initdata names the KBS.
func (w *modelWorld) setup(e *env, tools modelTools, dir string) error {
	host, err := bridgeAddr()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(dir, "model-")
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	plain := make([]byte, 4<<20+4097)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if _, err := rand.Read(plain); err != nil {
		return err
	}
	sum := sha256.Sum256(plain)
	w.digest, w.size = hex.EncodeToString(sum[:]), len(plain)
	keyHex := hex.EncodeToString(key)
	if err := os.WriteFile(filepath.Join(work, "key"), []byte(keyHex+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "model.bin"), plain, 0o600); err != nil {
		return err
	}
	served := filepath.Join(work, "served")
	if err := os.Mkdir(served, 0o700); err != nil {
		return err
	}
	if _, err := sh(tools.modelCli, "encrypt", "--key-file", filepath.Join(work, "key"), "--key-id", modelKeyID,
		filepath.Join(work, "model.bin"), filepath.Join(served, "model.enc")); err != nil {
		return err
	}
	if w.kbs, err = startFakeKbs(tools.fakeKbs, host, "--resource", modelResource+"="+keyHex,
		"--accept-tee", "sample", "--require-initdata"); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return err
	}
	w.files = &http.Server{Handler: http.FileServer(http.Dir(served))}
	go w.files.Serve(ln)
	w.baseURL = "http://" + ln.Addr().String()

	w.s = newSandbox("e2e000000000000d13", "model")
	if err := e.create(w.s, map[string]string{wire.AnnotInitData: modelInitdata(w.kbs.url)}); err != nil {
		return err
	}
	w.started = true
	start := time.Now()
	if err := e.adaptor.StartVM(w.s.id, bootDeadline); err != nil {
		return fmt.Errorf("StartVM: %w", err)
	}
	fmt.Printf("  (pod VM up in %.1f s; KBS stand-in %s, model %s/model.enc, %d bytes of plaintext)\n",
		time.Since(start).Seconds(), w.kbs.url, w.baseURL, w.size)
	if err := health(w.s.socket); err != nil {
		return err
	}
	if w.agent, err = agentchain.DialAgent(w.s.socket); err != nil {
		return err
	}
	if status, _, stderr, err := agentRun(w.agent, "mkdir", time.Minute, "mkdir", "-p", "-m", "0750", modelDir); err != nil || status != 0 {
		return fmt.Errorf("mkdir %s in the VM: status %d, %v: %s", modelDir, status, err, stderr)
	}
	return nil
}

func (w *modelWorld) loaderArgs(output string) []string {
	return []string{"peerpods-model-loader", "--initdata", "/run/peerpod/initdata",
		"--model", w.baseURL + "/model.enc", "--output", output, "--allow-sample-tee", "--timeout", "60"}
}

// loadedAfterAttestation: the loader attests, gets the key, decrypts into tmpfs; the test sees the
// digest from inside the VM and the stand-in's record of attestation before release.
func (w *modelWorld) loadedAfterAttestation(e *env, tools modelTools, dir string) error {
	if err := w.setup(e, tools, dir); err != nil {
		return err
	}
	output := modelDir + "/model.bin"
	start := time.Now()
	status, stdout, stderr, err := agentRun(w.agent, "load", 4*time.Minute, w.loaderArgs(output)...)
	if err != nil {
		return err
	}
	took := time.Since(start)
	if status != 0 {
		return fmt.Errorf("the loader exited %d: %s%s", status, strings.TrimSpace(stderr), w.kbs.tail())
	}
	want := fmt.Sprintf("sha256=%s size=%d path=%s", w.digest, w.size, output)
	if strings.TrimSpace(stdout) != want {
		return fmt.Errorf("the loader printed %q, want %q", stdout, want)
	}
	status, stdout, stderr, err = agentRun(w.agent, "sha256sum", time.Minute, "sha256sum", output)
	if err != nil || status != 0 {
		return fmt.Errorf("sha256sum in the VM: status %d, %v: %s", status, err, stderr)
	}
	if f := strings.Fields(stdout); len(f) == 0 || f[0] != w.digest {
		return fmt.Errorf("sha256sum in the VM says %q, the model's is %s", stdout, w.digest)
	}
	status, stdout, stderr, err = agentRun(w.agent, "statfs", time.Minute, "stat", "-f", "-c", "%T", modelDir)
	if err != nil || status != 0 {
		return fmt.Errorf("stat -f in the VM: status %d, %v: %s", status, err, stderr)
	}
	if fs := strings.TrimSpace(stdout); fs != "tmpfs" {
		return fmt.Errorf("%s in the VM is on %q, not tmpfs", modelDir, fs)
	}
	status, mode, _, err := agentRun(w.agent, "mode", time.Minute, "stat", "-c", "%a", output)
	if err != nil || status != 0 || strings.TrimSpace(mode) != "440" {
		return fmt.Errorf("the model's mode in the VM: %q (status %d, %v), want 440", mode, status, err)
	}
	events, err := w.kbs.events()
	if err != nil {
		return err
	}
	if strings.Join(events, ",") != "attested,released "+modelResource {
		return fmt.Errorf("the KBS stand-in saw %q, want one attestation, then the key's release%s", events, w.kbs.tail())
	}
	fmt.Printf("  (loader in the VM: %.1f s; sha256sum in the VM %s..., %s is tmpfs, mode 440; KBS: %s)\n",
		took.Seconds(), w.digest[:16], modelDir, strings.Join(events, ", "))
	return nil
}

// keyWithheld: the same VM, the KBS's policy now denying: the loader fails closed with exit 3 and
// a reason, and nothing appears at the output path.
func (w *modelWorld) keyWithheld() error {
	if w.agent == nil {
		return fmt.Errorf("no pod VM: the scenario before failed")
	}
	if err := w.kbs.setPolicy("deny"); err != nil {
		return err
	}
	output := modelDir + "/withheld.bin"
	status, stdout, stderr, err := agentRun(w.agent, "withheld", 4*time.Minute, w.loaderArgs(output)...)
	if err != nil {
		return err
	}
	if status != 3 {
		return fmt.Errorf("the loader exited %d, want 3 (key not released): %s%s", status, strings.TrimSpace(stderr),
			w.kbs.tail())
	}
	if stdout != "" {
		return fmt.Errorf("the refused loader printed %q on stdout", stdout)
	}
	if !strings.Contains(stderr, "policy denied") {
		return fmt.Errorf("the loader's reason does not say the policy denied the key: %q", stderr)
	}
	_, listing, _, err := agentRun(w.agent, "ls", time.Minute, "ls", "-a", modelDir)
	if err != nil {
		return err
	}
	if got := strings.Join(strings.Fields(listing), " "); got != ". .. model.bin" {
		return fmt.Errorf("%s in the VM holds %q after the refusal, want only model.bin", modelDir, got)
	}
	events, err := w.kbs.events()
	if err != nil {
		return err
	}
	if n := len(events); n < 2 || events[n-1] != "refused "+modelResource || events[n-2] != "attested" {
		return fmt.Errorf("the KBS stand-in saw %q, want an attestation, then a refusal%s", events, w.kbs.tail())
	}
	reason := lines(stderr)
	fmt.Printf("  (exit 3: %s)\n", reason[len(reason)-1])
	return nil
}

// stopLeavesNothing ends the model's pod VM as the shim would.
func (w *modelWorld) stopLeavesNothing(e *env) error {
	if w.s == nil {
		return fmt.Errorf("no sandbox: the setup failed")
	}
	if w.agent != nil {
		w.agent.Close()
		w.agent = nil
	}
	if err := e.adaptor.StopVM(w.s.id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	w.started = false
	return e.expectClean(10 * time.Second)
}
