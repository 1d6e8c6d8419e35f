package main

// The pod network with a real pod VM: a CNI-like pod netns on the node (a veth from this
// namespace, the "node", with the pod's IP and MAC on its far end), CreateVM naming it, and after
// StartVM the pod's IP answered from inside the VM, over the VXLAN tunnel the adaptor built on the
// node and the forwarder built in the VM.
//
//	node (this netns) 10.244.50.1 --veth-- pod netns eth0 10.244.50.5 (tc redirect) vxlan1
//	                  fd00:10:244:50::1           fd00:10:244:50::5
//	  ==VXLAN over the libvirt bridge==> VM: /run/netns/podns eth0 10.244.50.5 (same MAC)
//	                                     httpd :8080, serving the test image's page and CGI
//
// Both directions: the node opens a connection to the pod IP (answered by the VM's httpd), and the
// VM opens one to a listener on the node side (the CGI /cgi-bin/reach connects from inside the
// VM's pod netns and returns what it read).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

const (
	podNetnsName = "ppe2e-pod"
	podHostVeth  = "ppe2ecni0"
	podIP        = "10.244.50.5"
	podGateway   = "10.244.50.1"
	podMAC       = "0a:58:0a:f4:32:05"
	podIPv6      = "fd00:10:244:50::5"
	podGateway6  = "fd00:10:244:50::1"
)

func sh(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// makePodNetns stands in for the CNI: a pod netns with a veth from the node and the pod's address,
// MAC and default route. The returned function removes it.
func makePodNetns() (string, func(), error) {
	remove := func() {
		exec.Command("ip", "link", "del", podHostVeth).Run()
		exec.Command("ip", "netns", "del", podNetnsName).Run()
	}
	remove() // a run killed earlier
	steps := [][]string{
		{"ip", "netns", "add", podNetnsName},
		{"ip", "-n", podNetnsName, "link", "set", "lo", "up"},
		{"ip", "link", "add", podHostVeth, "type", "veth", "peer", "name", "eth0", "netns", podNetnsName},
		{"ip", "addr", "add", podGateway + "/24", "dev", podHostVeth},
		{"ip", "link", "set", podHostVeth, "up"},
		{"ip", "-n", podNetnsName, "link", "set", "eth0", "address", podMAC, "up"},
		{"ip", "-n", podNetnsName, "addr", "add", podIP + "/24", "dev", "eth0"},
		{"ip", "-n", podNetnsName, "route", "add", "default", "via", podGateway},
		// Dual stack: the pod's IPv6 address rides the same tunnel.
		{"ip", "addr", "add", podGateway6 + "/64", "dev", podHostVeth, "nodad"},
		{"ip", "-n", podNetnsName, "addr", "add", podIPv6 + "/64", "dev", "eth0", "nodad"},
	}
	for _, step := range steps {
		if _, err := sh(step...); err != nil {
			remove()
			return "", nil, err
		}
	}
	return "/run/netns/" + podNetnsName, remove, nil
}

// libvirtBridge is the bridge of the libvirt network the VMs are on: the node's underlay here.
func libvirtBridge() (string, error) {
	out, err := sh("virsh", "-c", os.Getenv("LIBVIRT_URI"), "net-info", os.Getenv("LIBVIRT_NET"))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "Bridge:" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("no bridge in virsh net-info: %q", out)
}

// httpGet fetches url, retrying until the deadline (the VM's httpd starts just after the forwarder).
func httpGet(url string, within time.Duration) (string, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(within)
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(body), nil
			}
			err = fmt.Errorf("status %s, %v: %q", resp.Status, rerr, body)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("GET %s: %w", url, err)
		}
		time.Sleep(time.Second)
	}
}

// nodeTunnelState lists what of the pod network exists on the node: VXLAN devices here and in the
// pod netns, and an ingress qdisc on the pod's interface.
func nodeTunnelState() []string {
	var left []string
	if out, _ := sh("ip", "-d", "-o", "link", "show", "type", "vxlan"); strings.TrimSpace(out) != "" {
		left = append(left, "vxlan in the node netns: "+strings.TrimSpace(out))
	}
	if out, _ := sh("ip", "-n", podNetnsName, "-d", "-o", "link", "show", "type", "vxlan"); strings.TrimSpace(out) != "" {
		left = append(left, "vxlan in the pod netns: "+strings.TrimSpace(out))
	}
	if out, _ := sh("ip", "netns", "exec", podNetnsName, "tc", "qdisc", "show", "dev", "eth0"); strings.Contains(out, "ingress") {
		left = append(left, "ingress qdisc on the pod's eth0")
	}
	return left
}

func (e *env) podNetwork() error {
	netns, remove, err := makePodNetns()
	if err != nil {
		return err
	}
	defer remove()
	s := newSandbox("e2e0000000000009ab", "podnet")
	req := s.request(nil)
	req.NetworkNamespacePath = netns
	path, err := e.adaptor.CreateVM(req)
	if err != nil {
		return fmt.Errorf("CreateVM with the pod netns: %w", err)
	}
	s.socket = path
	defer e.adaptor.StopVM(s.id)
	start := time.Now()
	if err := e.adaptor.StartVM(s.id, bootDeadline); err != nil {
		return fmt.Errorf("StartVM: %w", err)
	}
	fmt.Printf("  (StartVM with the pod network: %.1f s)\n", time.Since(start).Seconds())
	link, _ := sh("ip", "-n", podNetnsName, "-d", "-o", "link", "show", "vxlan1")
	if !strings.Contains(link, "vxlan id ") {
		return fmt.Errorf("no tunnel in the pod netns after StartVM: %q", link)
	}

	// Node -> pod IP: the page is served from inside the VM, not by anything on the node.
	page, err := httpGet("http://"+podIP+":8080/", 90*time.Second)
	if err != nil {
		return fmt.Errorf("node -> pod IP: %w", err)
	}
	if !strings.Contains(page, "podvm") {
		return fmt.Errorf("node -> pod IP: the page does not come from the pod VM: %q", page)
	}
	fmt.Printf("  (node -> %s:8080 answered from the VM: %q)\n", podIP, strings.TrimSpace(page))
	page6, err := httpGet("http://["+podIPv6+"]:8080/", 30*time.Second)
	if err != nil {
		return fmt.Errorf("node -> pod IPv6: %w", err)
	}
	if page6 != page {
		return fmt.Errorf("node -> pod IPv6: %q, not the page the pod's IPv4 serves (%q)", page6, page)
	}
	fmt.Printf("  (node -> [%s]:8080 answered from the VM too: dual stack)\n", podIPv6)

	// VM -> node: a listener on the node side of the pod's veth; the VM connects from its pod netns.
	ln, err := net.Listen("tcp", podGateway+":0")
	if err != nil {
		return err
	}
	defer ln.Close()
	token := fmt.Sprintf("node-peer-%d", time.Now().UnixNano())
	peers := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().String()
			fmt.Fprintf(c, "%s\n", token)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	reply, err := httpGet(fmt.Sprintf("http://%s:8080/cgi-bin/reach?%s:%d", podIP, podGateway, port), 60*time.Second)
	if err != nil {
		return fmt.Errorf("VM -> node: %w", err)
	}
	if !strings.Contains(reply, token) {
		return fmt.Errorf("VM -> node: the VM did not read the node peer's token: %q", reply)
	}
	select {
	case from := <-peers:
		if host, _, _ := net.SplitHostPort(from); host != podIP {
			return fmt.Errorf("VM -> node: the connection came from %s, not the pod IP %s", from, podIP)
		}
		fmt.Printf("  (VM -> node: %s reached %s:%d from the pod IP)\n", podIP, podGateway, port)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("VM -> node: the listener saw no connection")
	}

	// A larger answer: the page repeated, across many full-size segments through the tunnel.
	if err := bulkThroughTunnel(); err != nil {
		return err
	}

	if err := e.adaptor.StopVM(s.id); err != nil {
		return fmt.Errorf("StopVM: %w", err)
	}
	if left := nodeTunnelState(); len(left) > 0 {
		return fmt.Errorf("after StopVM: %s", strings.Join(left, "; "))
	}
	if out, _ := sh("ip", "-n", podNetnsName, "-o", "addr", "show", "eth0"); !strings.Contains(out, podIP+"/24") {
		return fmt.Errorf("after StopVM the CNI's interface lost its address: %q", out)
	}
	return e.expectClean(10 * time.Second)
}

// bulkThroughTunnel POSTs 4 MiB to the VM's /cgi-bin/size, which answers how many bytes it read:
// many full-size segments through the tunnel, at the MTU the two ends chose.
func bulkThroughTunnel() error {
	const size = 4 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+podIP+":8080/cgi-bin/size",
		io.LimitReader(zeroReader{}, size))
	if err != nil {
		return err
	}
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("4 MiB through the tunnel: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("4 MiB through the tunnel: %s", resp.Status)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if strings.TrimSpace(line) != fmt.Sprint(size) {
		return fmt.Errorf("4 MiB through the tunnel: the VM counted %q bytes", strings.TrimSpace(line))
	}
	fmt.Printf("  (4 MiB from the node reached the VM's pod netns whole)\n")
	return nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	return len(p), nil
}
