// Command ttrpcbench compares our C++ ttrpc server with the Go containerd/ttrpc server on the same
// load: unary ttrpctest.Test/Echo calls, back to back, one goroutine and one Go client per
// connection. Runs of the two servers are interleaved (ABBA per round) so drift on a shared
// machine hits both alike; the ratio is taken per round and reported as median and range. Prints a markdown table and ratio lines.
//
//	ttrpcbench -ours <ttrpc_test_server> -go <goechoserver> [-duration 5s] [-warmup 1s] [-payload 64]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pp/harness"
	"ppbench/stats"
)

type options struct {
	duration, warmup time.Duration
	payload, rounds  int
	conns            []int
}

func main() {
	ours := flag.String("ours", "", "our server binary (ttrpc_test_server), started as <bin> -unix <socket>")
	goServer := flag.String("go", "", "Go server binary (goechoserver), started as <bin> -unix <socket>")
	out := flag.String("out", "", "also write the report to this file")
	connList := flag.String("conns", "1,16", "comma-separated connection counts")
	var o options
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured time per run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time before each run")
	flag.IntVar(&o.payload, "payload", 64, "Echo payload bytes")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds per connection count; each runs both servers (alternating order)")
	flag.Parse()
	if *ours == "" || *goServer == "" {
		fmt.Fprintln(os.Stderr, "ttrpcbench: -ours <path> and -go <path> are required")
		os.Exit(2)
	}
	for _, s := range strings.Split(*connList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "ttrpcbench: bad -conns entry %q\n", s)
			os.Exit(2)
		}
		o.conns = append(o.conns, n)
	}
	if err := run(*ours, *goServer, *out, o); err != nil {
		fmt.Fprintln(os.Stderr, "ttrpcbench:", err)
		os.Exit(1)
	}
}

func run(oursPath, goPath, outPath string, o options) error {
	var cleanup harness.Cleanup
	defer cleanup.Run()
	cleanup.ExitOnSignal()

	dir, err := os.MkdirTemp("", "pp-ttrpcbench-")
	if err != nil {
		return err
	}
	cleanup.Add(func() { os.RemoveAll(dir) })

	servers := []*server{{name: "ours (C++)", path: oursPath}, {name: "go (containerd/ttrpc 1.1.1)", path: goPath}}
	for i, s := range servers {
		s.socket = filepath.Join(dir, fmt.Sprintf("s%d.sock", i))
		if s.proc, err = harness.Start(s.name, s.path, "-unix", s.socket); err != nil {
			return err
		}
		cleanup.Add(s.proc.Kill)
		if err := s.proc.WaitReady(30 * time.Second); err != nil {
			return fmt.Errorf("%w\n%s", err, s.proc.LogTail(20))
		}
	}

	w := io.Writer(os.Stdout)
	if outPath != "" {
		if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
			return err
		}
		f, err := os.Create(outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}

	fmt.Fprintf(w, "ttrpc unary Echo, %d B payload, %v measured after %v warmup per run, %d rounds per row (order alternating), Go client, %d CPUs\n\n",
		o.payload, o.duration, o.warmup, o.rounds, runtime.NumCPU())
	fmt.Fprintln(w, "| server | conns | calls/s | p50 us | p99 us |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	var ratios []string
	for _, conns := range o.conns {
		results := make([]*result, len(servers))
		var rateRatios, p99Ratios []float64
		for round := 0; round < o.rounds; round++ {
			this := make([]*result, len(servers))
			for k := range servers {
				i := k
				if round%2 == 1 {
					i = len(servers) - 1 - k
				}
				r, err := measure(servers[i].socket, conns, o)
				if err != nil {
					return fmt.Errorf("%s, %d conns: %w", servers[i].name, conns, err)
				}
				results[i] = results[i].merge(r)
				this[i] = r
			}
			rateRatios = append(rateRatios, this[0].rate()/this[1].rate())
			p99Ratios = append(p99Ratios, float64(this[0].percentile(99))/float64(this[1].percentile(99)))
		}
		for i, s := range servers {
			r := results[i]
			fmt.Fprintf(w, "| %s | %d | %.0f | %.1f | %.1f |\n", s.name, conns, r.rate(), micros(r.percentile(50)), micros(r.percentile(99)))
		}
		ratios = append(ratios, fmt.Sprintf("conns=%d: ours/go throughput %s; p99 %s", conns,
			stats.Summary(rateRatios, "%.2fx"), stats.Summary(p99Ratios, "%.2fx")))
	}
	fmt.Fprintln(w)
	for _, line := range ratios {
		fmt.Fprintln(w, line)
	}

	for _, s := range servers {
		s.proc.Signal(syscall.SIGTERM)
		if code, err := s.proc.WaitExit(15 * time.Second); err != nil || code != 0 {
			fmt.Fprintf(os.Stderr, "ttrpcbench: %s did not exit cleanly (code %d, %v)\n", s.name, code, err)
		}
	}
	return nil
}

type server struct {
	name, path, socket string
	proc               *harness.Process
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
