package main

// The adaptor's probes and Prometheus metrics after real pod VM lifecycles: /startup, /readyz and
// /livez answer 200, and /metrics holds the values those lifecycles must have produced, and passes
// `promtool check metrics` (Debian's prometheus package).

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

func scrape(port int, path string) (int, string, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(body), err
}

// sample returns the value of the series written exactly as `series` in the exposition.
func sample(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, series+" ")), 64)
			return v, err == nil
		}
	}
	return 0, false
}

func (e *env) metricsAfterLifecycles() error {
	for _, path := range []string{"/startup", "/readyz", "/livez"} {
		code, body, err := scrape(e.probePort, path)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("GET %s: %d %q %v", path, code, body, err)
		}
	}
	code, text, err := scrape(e.probePort, "/metrics")
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("GET /metrics: %d %v", code, err)
	}
	// At least: the lifecycle and pod-network StartVMs that succeeded, the ones that were meant to
	// fail, their creates and deletes, a verified provider, and nothing left running.
	checks := []struct {
		series string
		ok     func(float64) bool
		want   string
	}{
		{`peerpods_startvm_duration_seconds_count{outcome="ok",provider="libvirt"}`, func(v float64) bool { return v >= 2 }, ">= 2"},
		{`peerpods_startvm_duration_seconds_count{outcome="error",provider="libvirt"}`, func(v float64) bool { return v >= 1 }, ">= 1"},
		{`peerpods_provider_calls_total{operation="create",provider="libvirt"}`, func(v float64) bool { return v >= 3 }, ">= 3"},
		{`peerpods_provider_calls_total{operation="delete",provider="libvirt"}`, func(v float64) bool { return v >= 2 }, ">= 2"},
		{`peerpods_provider_up{provider="libvirt"}`, func(v float64) bool { return v == 1 }, "1"},
		{`peerpods_sandboxes{state="running"}`, func(v float64) bool { return v == 0 }, "0"},
		{`peerpods_agent_proxy_bytes_total{direction="to_vm"}`, func(v float64) bool { return v > 0 }, "> 0"},
		{`peerpods_agent_proxy_bytes_total{direction="from_vm"}`, func(v float64) bool { return v > 0 }, "> 0"},
		{`peerpods_reconcile_runs_total{result="ok"}`, func(v float64) bool { return v >= 1 }, ">= 1"},
	}
	for _, c := range checks {
		v, found := sample(text, c.series)
		if !found || !c.ok(v) {
			return fmt.Errorf("%s = %v (found %v), want %s", c.series, v, found, c.want)
		}
	}
	promtool := exec.Command("promtool", "check", "metrics")
	promtool.Stdin = bytes.NewReader([]byte(text))
	out, err := promtool.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		return fmt.Errorf("promtool check metrics: %v: %s", err, out)
	}
	v, _ := sample(text, `peerpods_startvm_duration_seconds_count{outcome="ok",provider="libvirt"}`)
	fmt.Printf("  (/metrics after the lifecycles: %v successful StartVMs, promtool clean)\n", v)
	return nil
}
