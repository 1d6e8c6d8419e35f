package main

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/containerd/ttrpc"

	"pp/wire"
)

// result holds every measured call's duration and the measured wall time.
type result struct {
	samples []time.Duration
	elapsed time.Duration
	sorted  bool
}

func (r *result) merge(o *result) *result {
	if r == nil {
		return o
	}
	return &result{samples: append(r.samples, o.samples...), elapsed: r.elapsed + o.elapsed}
}

func (r *result) rate() float64 { return float64(len(r.samples)) / r.elapsed.Seconds() }

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

// measure runs conns connections, each with its own client and one goroutine making back-to-back
// Echo calls, for warmup plus duration; calls that start and end inside the measured window count.
func measure(socket string, conns int, o options) (*result, error) {
	clients := make([]*ttrpc.Client, conns)
	for i := range clients {
		conn, err := net.Dial("unix", socket)
		if err != nil {
			return nil, err
		}
		clients[i] = ttrpc.NewClient(conn)
		defer clients[i].Close()
	}
	payload := make([]byte, o.payload)
	rand.New(rand.NewSource(1)).Read(payload)
	req := &wire.EchoRequest{Payload: payload}

	begin := time.Now().Add(o.warmup)
	end := begin.Add(o.duration)
	perConn := make([][]time.Duration, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *ttrpc.Client) {
			defer wg.Done()
			samples := make([]time.Duration, 0, 1<<16)
			var resp wire.EchoResponse
			for {
				start := time.Now()
				if start.After(end) {
					break
				}
				if err := c.Call(context.Background(), wire.TestService, wire.MethodEcho, req, &resp); err != nil {
					errs[i] = err
					return
				}
				if len(resp.Payload) != len(payload) {
					errs[i] = fmt.Errorf("echoed %d bytes, sent %d", len(resp.Payload), len(payload))
					return
				}
				if done := time.Now(); start.After(begin) && done.Before(end) {
					samples = append(samples, done.Sub(start))
				}
			}
			perConn[i] = samples
		}(i, c)
	}
	wg.Wait()
	r := &result{elapsed: o.duration}
	for i := range perConn {
		if errs[i] != nil {
			return nil, fmt.Errorf("connection %d: %w", i, errs[i])
		}
		r.samples = append(r.samples, perConn[i]...)
	}
	return r, nil
}
