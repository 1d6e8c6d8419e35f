package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/ttrpc"

	"pp/harness"
	"pp/wire"
)

const (
	concurrentCalls = 64
	concurrentConns = 32
	callsPerConn    = 8
)

func (s *suite) loadChecks(r *harness.Runner) {
	r.Run("concurrent_calls_one_connection", s.concurrentCalls)
	r.Run("concurrent_connections", s.concurrentConnections)
	r.Run("slow_call_does_not_block_fast_one", s.noHeadOfLineBlocking)
}

// concurrentCalls: 64 calls at once on one client, each sleeping 0-50 ms so replies come back in
// another order than sent. Each reply must carry its own request's payload and metadata.
func (s *suite) concurrentCalls() error {
	return s.withClient(func(c *ttrpc.Client) error {
		rng := rand.New(rand.NewSource(2))
		errs := make(chan error, concurrentCalls)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < concurrentCalls; i++ {
			req := &wire.EchoRequest{Payload: []byte(fmt.Sprintf("call-%d-%x", i, rng.Int63())), SleepMs: rng.Int63n(51)}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				md := ttrpc.MD{}
				md.Set("call", strconv.Itoa(i))
				ctx, cancel := context.WithTimeout(ttrpc.WithMetadata(context.Background(), md), callTimeout)
				defer cancel()
				resp, err := echo(ctx, c, req)
				switch {
				case err != nil:
					errs <- fmt.Errorf("call %d: %w", i, err)
				case !bytes.Equal(resp.Payload, req.Payload):
					errs <- fmt.Errorf("call %d got payload %q, want %q", i, resp.Payload, req.Payload)
				case len(resp.Metadata) != 1 || resp.Metadata[0].Value != strconv.Itoa(i):
					errs <- fmt.Errorf("call %d got metadata %v", i, resp.Metadata)
				}
			}(i)
		}
		close(start)
		wg.Wait()
		return firstOf(errs)
	})
}

// concurrentConnections: 32 connections at once, each with its own client making 8 calls.
func (s *suite) concurrentConnections() error {
	errs := make(chan error, concurrentConns)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < concurrentConns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			err := s.withClient(func(c *ttrpc.Client) error {
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				defer cancel()
				for j := 0; j < callsPerConn; j++ {
					if err := echoPayload(ctx, c, []byte(fmt.Sprintf("conn-%d-call-%d", i, j))); err != nil {
						return fmt.Errorf("call %d: %w", j, err)
					}
				}
				return nil
			})
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	return firstOf(errs)
}

// noHeadOfLineBlocking: on one connection a 2 s call is sent before a quick one; the quick reply
// must come first.
func (s *suite) noHeadOfLineBlocking() error {
	conn, err := net.Dial("unix", s.socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(callTimeout))
	if err := sendEchoes(conn, map[uint32]*wire.EchoRequest{
		1: {Payload: []byte("slow"), SleepMs: 2000},
		3: {Payload: []byte("quick")},
	}); err != nil {
		return err
	}
	if err := expectEcho(conn, 3, "quick"); err != nil {
		return fmt.Errorf("first reply: %w", err)
	}
	return expectEcho(conn, 1, "slow")
}

// firstOf reports how many errors the (closed-over, drained) channel holds and the first one.
func firstOf(errs chan error) error {
	close(errs)
	var first error
	n := 0
	for err := range errs {
		if first == nil {
			first = err
		}
		n++
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d failed, first: %w", n, first)
}
