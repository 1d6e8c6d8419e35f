package main

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/containerd/ttrpc"

	"pp/agentstandin"
	"pp/wire"
)

const mib = 1 << 20

// callBound is the deadline of every measured call: a stuck path fails the run, it cannot hang it.
const callBound = 60 * time.Second

// result holds every measured call's duration, the bytes they carried and the measured wall time.
type result struct {
	samples []time.Duration
	bytes   int64
	elapsed time.Duration
	sorted  bool
}

func (r *result) merge(o *result) *result {
	if r == nil {
		return o
	}
	return &result{samples: append(r.samples, o.samples...), bytes: r.bytes + o.bytes, elapsed: r.elapsed + o.elapsed}
}

func (r *result) mibps() float64 { return float64(r.bytes) / mib / r.elapsed.Seconds() }

// percentile is the nearest-rank percentile over all samples.
func (r *result) percentile(p int) time.Duration {
	if len(r.samples) == 0 {
		return 0
	}
	if !r.sorted {
		sort.Slice(r.samples, func(i, j int) bool { return r.samples[i] < r.samples[j] })
		r.sorted = true
	}
	rank := (p*len(r.samples) + 99) / 100
	if rank < 1 {
		rank = 1
	}
	return r.samples[rank-1]
}

func dial(socket string) (*ttrpc.Client, error) {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return nil, err
	}
	return ttrpc.NewClient(conn), nil
}

// measureSmall makes back-to-back grpc.Health/Check calls on one connection.
func measureSmall(socket string, o options) (*result, error) {
	c, err := dial(socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return drive(o, 1, func() (int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), callBound)
		defer cancel()
		var resp wire.HealthCheckResponse
		if err := c.Call(ctx, wire.HealthService, wire.MethodCheck, &wire.CheckRequest{}, &resp); err != nil {
			return 0, err
		}
		if resp.Status != wire.ServingStatusServing {
			return 0, fmt.Errorf("health status %d", resp.Status)
		}
		return 0, nil
	})
}

// measureBulk makes CopyFile calls carrying 1 MiB of data, `inflight` at a time on one connection.
func measureBulk(socket string, inflight int, o options) (*result, error) {
	c, err := dial(socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	data := agentstandin.Pattern("relaybench", mib)
	return drive(o, inflight, func() (int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), callBound)
		defer cancel()
		req := &wire.CopyFileRequest{Path: "/run/kata-containers/shared/bench.bin", FileSize: 64 * mib, FileMode: 0o644, Data: data}
		if err := c.Call(ctx, wire.AgentService, wire.MethodCopyFile, req, &wire.Empty{}); err != nil {
			return 0, err
		}
		return mib, nil
	})
}

// drive runs `workers` goroutines calling fn back to back for warmup plus duration; calls that
// start and end inside the measured window count.
func drive(o options, workers int, fn func() (int64, error)) (*result, error) {
	begin := time.Now().Add(o.warmup)
	end := begin.Add(o.duration)
	per := make([]*result, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := &result{samples: make([]time.Duration, 0, 1<<14)}
			for {
				start := time.Now()
				if start.After(end) {
					break
				}
				n, err := fn()
				if err != nil {
					errs[w] = err
					return
				}
				if done := time.Now(); !start.Before(begin) && !done.After(end) {
					r.samples = append(r.samples, done.Sub(start))
					r.bytes += n
				}
			}
			per[w] = r
		}(w)
	}
	wg.Wait()
	total := &result{elapsed: o.duration}
	for w := range per {
		if errs[w] != nil {
			return nil, errs[w]
		}
		total.samples = append(total.samples, per[w].samples...)
		total.bytes += per[w].bytes
	}
	if len(total.samples) == 0 {
		return nil, fmt.Errorf("no call completed inside the measured window")
	}
	return total, nil
}
