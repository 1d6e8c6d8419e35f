// Command bootbench measures what the adaptor adds to a pod VM's boot, in one run on one host:
//
//	ours: CreateVM -> StartVM -> grpc.Health/Check answered through agent.ttrpc, the adaptor's
//	      mTLS proxy and the forwarder in the VM (cloud-api-adaptor libvirt, the test image)
//	bare: `virsh create` of the same image with the same devices and an equivalent cidata ISO
//	      (made before the clock starts) until the VM's forwarder port accepts a TCP connection
//
// each run alternately N times, then 4 at once; then, against the cold boots of "ours":
//
//	warm: the same shim calls to an adaptor with a warm pool of 4 VMs of the pod's shape: StartVM
//	      claims a ready pool VM (pod configuration delivered over mutual TLS) and returns once
//	      Health/Check answers through the agent path; the pool refills before the next round
//
// Run it under deploy/local/libvirt-netns.sh:
//
//	libvirt-netns.sh --image podvm-test.qcow2 -- bootbench -adaptor <cloud-api-adaptor> -out boot.md
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pp/agentchain"
	"pp/harness"
	"pp/testpki"
	"pp/wire"
	"ppbench/stats"
)

const (
	vcpus     = 1
	memoryMiB = 384
	warmPool  = 4
)

type bench struct {
	adaptor  *agentchain.Adaptor
	warm     *agentchain.Adaptor // with a warm pool of warmPool VMs
	warmDir  string
	dir      string
	poolPath string
	basePath string
	seq      int32 // atomic: four boots at once each take a number
}

func main() {
	adaptorBin := flag.String("adaptor", "", "cloud-api-adaptor binary")
	runs := flag.Int("runs", 5, "rounds of one boot of each kind (order alternating)")
	runs4 := flag.Int("runs4", 5, "rounds of 4 concurrent boots of each kind (order alternating)")
	warmRuns := flag.Int("warm-runs", 5, "rounds of one warm claim")
	warmRuns4 := flag.Int("warm-runs4", 5, "rounds of 4 concurrent warm claims")
	out := flag.String("out", "", "also write the markdown report here")
	flag.Parse()
	rand.Seed(time.Now().UnixNano())
	if *adaptorBin == "" || os.Getenv("LIBVIRT_POOL") == "" {
		fmt.Fprintln(os.Stderr, "bootbench: -adaptor is required; run it under deploy/local/libvirt-netns.sh")
		os.Exit(2)
	}
	var cleanup harness.Cleanup
	defer cleanup.Run()
	cleanup.ExitOnSignal()
	if err := run(*adaptorBin, *runs, *runs4, *warmRuns, *warmRuns4, *out, &cleanup); err != nil {
		fmt.Fprintln(os.Stderr, "bootbench:", err)
		cleanup.Run()
		os.Exit(1)
	}
}

func run(adaptorBin string, runs, runs4, warmRuns, warmRuns4 int, out string, cleanup *harness.Cleanup) error {
	dir, err := os.MkdirTemp("/var/tmp", "ppboot-")
	if err != nil {
		return err
	}
	os.Chmod(dir, 0o755) // QEMU (libvirt-qemu) reads the bare VMs' disks from here
	cleanup.Add(func() { os.RemoveAll(dir) })
	b := &bench{dir: dir}
	pool := os.Getenv("LIBVIRT_POOL")
	if b.basePath, err = agentchain.Virsh("vol-path", "--pool", pool, os.Getenv("LIBVIRT_VOL_NAME")); err != nil {
		return err
	}

	a := &agentchain.Adaptor{Socket: filepath.Join(dir, "hypervisor.sock"), PodsDir: filepath.Join(dir, "pods")}
	p, err := harness.Start("adaptor", adaptorBin, "libvirt", "-probe-port", "0", "-health-port", "0", "-socket", a.Socket, "-pods-dir", a.PodsDir,
		"-tls-dir", filepath.Join(dir, "tls"), "-firmware", "none", "-cpu", fmt.Sprint(vcpus),
		"-memory", fmt.Sprint(memoryMiB), "-domain-type", "qemu", "-proxy-timeout", "5m")
	if err != nil {
		return err
	}
	cleanup.Add(p.Kill)
	a.Proc = p
	if err := harness.WaitDial(a.Socket, p, 60*time.Second); err != nil {
		return err
	}
	b.adaptor = a

	// Each round boots both kinds, the order alternating, so that drift on a shared machine hits
	// both alike; the ratio is taken per round.
	pair := func(i int, what string, oursBoot, bareBoot func() (time.Duration, error), o, bb *[]time.Duration) error {
		kinds := []struct {
			name string
			boot func() (time.Duration, error)
			into *[]time.Duration
		}{{"ours" + what, oursBoot, o}, {"bare" + what, bareBoot, bb}}
		if i%2 == 1 {
			kinds[0], kinds[1] = kinds[1], kinds[0]
		}
		for _, k := range kinds {
			d, err := k.boot()
			if err != nil {
				return fmt.Errorf("%s: %w\n%s", k.name, err, p.LogTail(30))
			}
			*k.into = append(*k.into, d)
			fmt.Printf("%s #%d: %.2f s\n", k.name, i+1, d.Seconds())
		}
		return nil
	}
	var ours, bare []time.Duration
	for i := 0; i < runs; i++ {
		if err := pair(i, "", b.ours, b.bare, &ours, &bare); err != nil {
			return err
		}
	}
	var ours4, bare4 []time.Duration
	four := func(boot func() (time.Duration, error)) func() (time.Duration, error) {
		return func() (time.Duration, error) { return b.concurrent(4, boot) }
	}
	for i := 0; i < runs4; i++ {
		if err := pair(i, " x4", four(b.ours), four(b.bare), &ours4, &bare4); err != nil {
			return err
		}
	}

	report := b.report(ours, bare, ours4, bare4)
	if warmRuns > 0 || warmRuns4 > 0 {
		warm, warm4, err := b.warmRounds(adaptorBin, warmRuns, warmRuns4, cleanup)
		if err != nil {
			return err
		}
		report += b.warmReport(ours, ours4, warm, warm4)
	}
	fmt.Print(report)
	if out != "" {
		os.MkdirAll(filepath.Dir(out), 0o755)
		return os.WriteFile(out, []byte(report), 0o644)
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func secs(d []time.Duration) string {
	var parts []string
	for _, x := range d {
		parts = append(parts, fmt.Sprintf("%.1f", x.Seconds()))
	}
	return strings.Join(parts, ", ")
}

func (b *bench) report(ours, bare, ours4, bare4 []time.Duration) string {
	mo, mb := median(ours), median(bare)
	mo4, mb4 := median(ours4), median(bare4)
	var s strings.Builder
	fmt.Fprintf(&s, "\n| pod VM boot (TCG, %d vCPU, %d MiB, test image) | ours: CreateVM to Health/Check answered | bare `virsh create` to port 15150 open | ours / bare |\n", vcpus, memoryMiB)
	s.WriteString("|---|---|---|---|\n")
	fmt.Fprintf(&s, "| one pod, median of %d (runs: ours %s s; bare %s s) | %.2f s | %.2f s | %.3f (%+.1f%%) |\n",
		len(ours), secs(ours), secs(bare), mo.Seconds(), mb.Seconds(), mo.Seconds()/mb.Seconds(), 100*(mo.Seconds()/mb.Seconds()-1))
	fmt.Fprintf(&s, "| 4 pods at once until the last answers, median of %d (rounds: ours %s s; bare %s s) | %.2f s | %.2f s | %.3f (%+.1f%%) |\n",
		len(ours4), secs(ours4), secs(bare4), mo4.Seconds(), mb4.Seconds(), mo4.Seconds()/mb4.Seconds(), 100*(mo4.Seconds()/mb4.Seconds()-1))
	ratios := func(o, b []time.Duration) []float64 {
		var r []float64
		for i := range o {
			r = append(r, o[i].Seconds()/b[i].Seconds())
		}
		return r
	}
	fmt.Fprintf(&s, "\nours/bare per round: one pod %s; 4 pods %s\n", stats.Summary(ratios(ours, bare), "%.3f"),
		stats.Summary(ratios(ours4, bare4), "%.3f"))
	return s.String()
}

func (b *bench) next() int {
	// Concurrent boots once took the same number, so two "pods" shared one sandbox id.
	return int(atomic.AddInt32(&b.seq, 1))
}

// ours: the shim's calls, timed from CreateVM to the first Health/Check answer.
func (b *bench) ours() (time.Duration, error) { return b.shim(b.adaptor) }

// shim: CreateVM, StartVM, Health/Check through agent.ttrpc, timed, then StopVM.
func (b *bench) shim(a *agentchain.Adaptor) (time.Duration, error) {
	n := b.next()
	id := fmt.Sprintf("%08dbootbench", n) // the instance name takes the first 8 characters
	start := time.Now()
	path, err := a.CreateVM(agentchain.SandboxRequest(id, "bench", "0"))
	if err != nil {
		return 0, err
	}
	defer a.StopVM(id)
	if err := a.StartVM(id, 5*time.Minute); err != nil {
		return 0, err
	}
	c, err := agentchain.DialAgent(path)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var h wire.HealthCheckResponse
	if err := c.Call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{}, &h); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// bare: the same image booted by hand. The overlay and the cidata ISO are made before the clock
// starts; the clock stops when the VM's forwarder accepts a TCP connection.
func (b *bench) bare() (time.Duration, error) {
	n := b.next()
	name := fmt.Sprintf("bare-%d", n)
	disk := filepath.Join(b.dir, name+".qcow2")
	iso := filepath.Join(b.dir, name+".iso")
	defer os.Remove(disk)
	defer os.Remove(iso)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", b.basePath, disk).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("qemu-img: %v: %s", err, out)
	}
	if err := makeSeed(iso, name, filepath.Join(b.dir, name+"-seed")); err != nil {
		return 0, err
	}
	xmlPath := filepath.Join(b.dir, name+".xml")
	// A fresh MAC per boot: dnsmasq's status file may still hold leases of earlier runs.
	mac := fmt.Sprintf("52:54:00:%02x:%02x:%02x", rand.Intn(256), rand.Intn(256), rand.Intn(256))
	if err := os.WriteFile(xmlPath, []byte(domainXML(name, mac, disk, iso, os.Getenv("LIBVIRT_NET"))), 0o644); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := agentchain.Virsh("create", xmlPath); err != nil {
		return 0, err
	}
	defer agentchain.Virsh("destroy", name)
	deadline := time.Now().Add(5 * time.Minute)
	ip := ""
	for ip == "" {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s got no address", name)
		}
		// The lease as libvirt's dnsmasq records it, read in-process like the provider's lease API
		// call (spawning virsh per poll would load the 2 cores the guests run on).
		ip = leaseFor(mac)
		if ip == "" {
			time.Sleep(250 * time.Millisecond)
		}
	}
	for {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "15150"), time.Second)
		if err == nil {
			conn.Close()
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: port 15150 never opened: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaseFor reads the address leased to `mac` from libvirt's dnsmasq status files.
func leaseFor(mac string) string {
	files, _ := filepath.Glob("/var/lib/libvirt/dnsmasq/*.status")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var leases []struct {
			IP  string `json:"ip-address"`
			MAC string `json:"mac-address"`
		}
		if json.Unmarshal(data, &leases) != nil {
			continue
		}
		for _, l := range leases {
			if strings.EqualFold(l.MAC, mac) && strings.Count(l.IP, ".") == 3 {
				return l.IP
			}
		}
	}
	return ""
}

func (b *bench) concurrent(k int, boot func() (time.Duration, error)) (time.Duration, error) {
	var wg sync.WaitGroup
	errs := make([]error, k)
	start := time.Now()
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = boot()
		}(i)
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return took, nil
}

// makeSeed writes a NoCloud ISO whose apf.json carries fresh TLS material, as the adaptor's would.
func makeSeed(iso, name, dir string) error {
	ca, err := testpki.NewCA("bootbench CA")
	if err != nil {
		return err
	}
	server, err := ca.Issue(testpki.LeafOptions{CommonName: name, DNSNames: []string{name}})
	if err != nil {
		return err
	}
	apf, err := json.Marshal(map[string]string{
		"pod-namespace": "default", "pod-name": name,
		"tls-server-cert": string(server.CertPEM), "tls-server-key": string(server.KeyPEM),
		"tls-client-ca": string(ca.CertPEM),
	})
	if err != nil {
		return err
	}
	userData := "#cloud-config\nwrite_files:\n- path: /run/peerpod/apf.json\n  permissions: \"0600\"\n  content: |\n    " + string(apf) + "\n"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "user-data"), []byte(userData), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "meta-data"), []byte("local-hostname: "+name+"\n"), 0o600); err != nil {
		return err
	}
	out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-V", "cidata", "-r", "-o", iso,
		filepath.Join(dir, "user-data"), filepath.Join(dir, "meta-data")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("xorriso: %v: %s", err, out)
	}
	return nil
}

// domainXML is the provider's plain TCG domain (tests/providers/libvirt/golden/plain-tcg.xml) for
// the bare boot: same machine, devices, vCPUs and memory.
func domainXML(name, mac, disk, iso, network string) string {
	return fmt.Sprintf(`<domain type="qemu">
  <name>%s</name>
  <memory unit="MiB">%d</memory>
  <vcpu placement="static">%d</vcpu>
  <os><type arch="x86_64" machine="q35">hvm</type></os>
  <features><acpi/><apic/></features>
  <clock offset="utc"/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <disk type="file" device="disk"><driver name="qemu" type="qcow2" discard="unmap"/><source file="%s"/><target dev="vda" bus="virtio"/><boot order="1"/></disk>
    <disk type="file" device="disk"><driver name="qemu" type="raw"/><source file="%s"/><target dev="vdb" bus="virtio"/><readonly/></disk>
    <interface type="network"><mac address="%s"/><source network="%s"/><model type="virtio"/></interface>
    <serial type="pty"><target port="0"/></serial>
    <console type="pty"><target type="serial" port="0"/></console>
    <rng model="virtio"><backend model="random">/dev/urandom</backend></rng>
    <memballoon model="none"/>
  </devices>
</domain>
`, name, memoryMiB, vcpus, disk, iso, mac, network)
}

// warmRounds starts an adaptor with a warm pool of warmPool VMs of the shape agentchain's
// SandboxRequest asks for, then times claims: one at a time, then four at once, each round once the
// pool is full again.
func (b *bench) warmRounds(adaptorBin string, runs, runs4 int, cleanup *harness.Cleanup) ([]time.Duration, []time.Duration, error) {
	b.warmDir = filepath.Join(b.dir, "warm")
	a := &agentchain.Adaptor{Socket: filepath.Join(b.warmDir, "hypervisor.sock"), PodsDir: filepath.Join(b.warmDir, "pods")}
	shape := agentchain.SandboxRequest("x", "x", "0").Annotations
	pools := fmt.Sprintf(`[{"name":"bench","size":%d,"vcpus":%s,"memory":%s}]`, warmPool,
		shape[wire.AnnotVCPUs], shape[wire.AnnotMemory])
	p, err := harness.Start("adaptor-warm", adaptorBin, "libvirt", "-probe-port", "0", "-health-port", "0",
		"-socket", a.Socket, "-pods-dir", a.PodsDir, "-tls-dir", filepath.Join(b.warmDir, "tls"), "-firmware", "none",
		"-cpu", fmt.Sprint(vcpus), "-memory", fmt.Sprint(memoryMiB), "-domain-type", "qemu", "-proxy-timeout", "5m",
		"-warm-pools", pools)
	if err != nil {
		return nil, nil, err
	}
	cleanup.Add(p.Kill)
	a.Proc = p
	if err := harness.WaitDial(a.Socket, p, 60*time.Second); err != nil {
		return nil, nil, err
	}
	b.warm = a
	defer func() {
		// The pool's VMs are kept across an adaptor restart; an adaptor without pools drains them.
		agentchain.Stop(p, 30*time.Second)
		q, err := harness.Start("adaptor-drain", adaptorBin, "libvirt", "-probe-port", "0", "-health-port", "0",
			"-socket", a.Socket, "-pods-dir", a.PodsDir, "-tls-dir", filepath.Join(b.warmDir, "tls"))
		if err != nil {
			return
		}
		cleanup.Add(q.Kill)
		for i := 0; i < 240 && b.poolSize() > 0; i++ {
			time.Sleep(500 * time.Millisecond)
		}
		agentchain.Stop(q, 30*time.Second)
	}()
	var warm, warm4 []time.Duration
	for i := 0; i < runs+runs4; i++ {
		if err := b.waitPoolFull(10 * time.Minute); err != nil {
			return nil, nil, fmt.Errorf("%w\n%s", err, p.LogTail(30))
		}
		if i < runs {
			d, err := b.shim(a)
			if err != nil {
				return nil, nil, fmt.Errorf("warm: %w\n%s", err, p.LogTail(30))
			}
			warm = append(warm, d)
			fmt.Printf("warm #%d: %.3f s\n", i+1, d.Seconds())
			continue
		}
		d, err := b.concurrent(4, func() (time.Duration, error) { return b.shim(a) })
		if err != nil {
			return nil, nil, fmt.Errorf("warm x4: %w\n%s", err, p.LogTail(30))
		}
		warm4 = append(warm4, d)
		fmt.Printf("warm x4 #%d: %.3f s\n", i-runs+1, d.Seconds())
	}
	return warm, warm4, nil
}

// poolSize counts the pool VM records of the warm adaptor (any state).
func (b *bench) poolSize() int {
	entries, _ := os.ReadDir(filepath.Join(b.warmDir, "pool"))
	return len(entries)
}

func (b *bench) waitPoolFull(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		entries, _ := os.ReadDir(filepath.Join(b.warmDir, "pool"))
		ready := 0
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(b.warmDir, "pool", e.Name()))
			var r struct {
				State string `json:"state"`
			}
			if err == nil && json.Unmarshal(data, &r) == nil && r.State == "ready" {
				ready++
			}
		}
		if ready >= warmPool {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm pool not full within %v (%d ready)", within, ready)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (b *bench) warmReport(cold, cold4, warm, warm4 []time.Duration) string {
	var s strings.Builder
	ms := func(d []time.Duration) string {
		var parts []string
		for _, x := range d {
			parts = append(parts, strconv.Itoa(int(x.Milliseconds())))
		}
		return strings.Join(parts, ", ")
	}
	s.WriteString("\n| pod start (TCG, test image) | cold: a VM booted for the pod | warm: a pool VM claimed | cold / warm |\n|---|---|---|---|\n")
	if len(warm) > 0 && len(cold) > 0 {
		mc, mw := median(cold), median(warm)
		fmt.Fprintf(&s, "| one pod, CreateVM to Health/Check answered, median (warm runs: %s ms) | %.2f s | %.3f s | %.1fx |\n",
			ms(warm), mc.Seconds(), mw.Seconds(), mc.Seconds()/mw.Seconds())
	}
	if len(warm4) > 0 && len(cold4) > 0 {
		mc, mw := median(cold4), median(warm4)
		fmt.Fprintf(&s, "| 4 pods at once until the last answers, median (warm rounds: %s ms) | %.2f s | %.3f s | %.1fx |\n",
			ms(warm4), mc.Seconds(), mw.Seconds(), mc.Seconds()/mw.Seconds())
	}
	return s.String()
}
