package main

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pp/harness"
	"pp/wire"
)

// callTimeout bounds calls that are not about deadlines, so a hung server fails instead of hanging.
const callTimeout = 30 * time.Second

// echoChecks covers one call at a time: payloads, metadata, deadlines and errors.
func (s *suite) echoChecks(r *harness.Runner) {
	rng := rand.New(rand.NewSource(1))
	sizes := []struct {
		name string
		n    int
	}{{"0", 0}, {"1", 1}, {"64KiB", 64 << 10}, {"4MiB_minus_1KiB", wire.MaxData - 1<<10}}
	for _, size := range sizes {
		payload := randomBytes(rng, size.n)
		r.Run("payload_"+size.name, func() error {
			return s.withClient(func(c *ttrpc.Client) error {
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				defer cancel()
				return echoPayload(ctx, c, payload)
			})
		})
	}
	r.Run("metadata", s.metadata)
	r.Run("metadata_none", s.metadataNone)
	r.Run("deadline_remaining_with_deadline", s.deadlineRemaining)
	r.Run("deadline_remaining_without_deadline", s.noDeadline)
	r.Run("deadline_exceeded", s.deadlineExceeded)
	r.Run("deadline_exceeded_by_server", s.deadlineExceededByServer)
	r.Run("fail_code", s.failCode)
	r.Run("oversize_then_usable", s.oversizeThenUsable)
}

func (s *suite) withClient(fn func(*ttrpc.Client) error) error {
	c, err := s.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// metadata: several keys, one of them repeated; each key's values come back in order.
func (s *suite) metadata() error {
	sent := ttrpc.MD{}
	sent.Set("alpha", "1")
	sent.Set("beta", "b1", "b2", "b3")
	sent.Set("gamma", "")
	sent.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	return s.withClient(func(c *ttrpc.Client) error {
		ctx, cancel := context.WithTimeout(ttrpc.WithMetadata(context.Background(), sent), callTimeout)
		defer cancel()
		resp, err := echo(ctx, c, &wire.EchoRequest{})
		if err != nil {
			return err
		}
		if got := groupByKey(resp.Metadata); !reflect.DeepEqual(got, map[string][]string(sent)) {
			return fmt.Errorf("sent %v, handler saw %v", map[string][]string(sent), got)
		}
		return nil
	})
}

func (s *suite) metadataNone() error {
	return s.withClient(func(c *ttrpc.Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		resp, err := echo(ctx, c, &wire.EchoRequest{})
		if err != nil {
			return err
		}
		if len(resp.Metadata) != 0 {
			return fmt.Errorf("sent no metadata, handler saw %v", resp.Metadata)
		}
		return nil
	})
}

func groupByKey(pairs []*wire.Pair) map[string][]string {
	m := map[string][]string{}
	for _, p := range pairs {
		m[p.Key] = append(m[p.Key], p.Value)
	}
	return m
}

// deadlineRemaining: with a 10 s deadline the handler sees a remaining time in (0, 10000] ms.
func (s *suite) deadlineRemaining() error {
	const timeout = 10 * time.Second
	return s.withClient(func(c *ttrpc.Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		resp, err := echo(ctx, c, &wire.EchoRequest{})
		if err != nil {
			return err
		}
		if ms := resp.DeadlineRemainingMs; ms <= 0 || ms > timeout.Milliseconds() {
			return fmt.Errorf("deadline_remaining_ms = %d, want within (0, %d]", ms, timeout.Milliseconds())
		}
		return nil
	})
}

// noDeadline: without a deadline the handler reports -1.
func (s *suite) noDeadline() error {
	return s.withClient(func(c *ttrpc.Client) error {
		resp, err := echo(context.Background(), c, &wire.EchoRequest{})
		if err != nil {
			return err
		}
		if resp.DeadlineRemainingMs != -1 {
			return fmt.Errorf("deadline_remaining_ms = %d, want -1", resp.DeadlineRemainingMs)
		}
		return nil
	})
}

// deadlineExceeded: sleep 2000 ms under a 200 ms deadline. The Go client's own deadline fires
// about when the server's does, so either side may report it.
func (s *suite) deadlineExceeded() error {
	return s.withClient(func(c *ttrpc.Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := echo(ctx, c, &wire.EchoRequest{SleepMs: 2000})
		return harness.ExpectCode(err, codes.DeadlineExceeded)
	})
}

// deadlineExceededByServer: the request says timeout_nano = 200 ms while the client waits up to
// 30 s, so the DEADLINE_EXCEEDED status must come from the server, before the 5 s sleep ends.
func (s *suite) deadlineExceededByServer() error {
	const sleep = 5 * time.Second
	shorten := func(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response, _ *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
		req.TimeoutNano = (200 * time.Millisecond).Nanoseconds()
		return invoke(ctx, req, resp)
	}
	c, err := s.dial(ttrpc.WithUnaryClientInterceptor(shorten))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	start := time.Now()
	_, err = echo(ctx, c, &wire.EchoRequest{SleepMs: sleep.Milliseconds()})
	if _, isStatus := status.FromError(err); !isStatus {
		return fmt.Errorf("want a DeadlineExceeded status from the server, got %v", err)
	}
	if err := harness.ExpectCode(err, codes.DeadlineExceeded); err != nil {
		return err
	}
	if elapsed := time.Since(start); elapsed >= sleep {
		return fmt.Errorf("the reply took %v: the sleep was not cut short at the deadline", elapsed)
	}
	return nil
}

// failCode: fail_code 5 "nope" comes back as NotFound "nope".
func (s *suite) failCode() error {
	return s.withClient(func(c *ttrpc.Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		_, err := echo(ctx, c, &wire.EchoRequest{FailCode: int32(codes.NotFound), FailMessage: "nope"})
		if err := harness.ExpectCode(err, codes.NotFound); err != nil {
			return err
		}
		if msg := status.Convert(err).Message(); msg != "nope" {
			return fmt.Errorf("message %q, want %q", msg, "nope")
		}
		return nil
	})
}

// oversizeThenUsable: a 5 MiB payload gets ResourceExhausted (the Go 1.1.1 client sends it
// anyway), and the same client still works afterwards.
func (s *suite) oversizeThenUsable() error {
	return s.withClient(func(c *ttrpc.Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		_, err := echo(ctx, c, &wire.EchoRequest{Payload: make([]byte, 5<<20)})
		if err := harness.ExpectCode(err, codes.ResourceExhausted); err != nil {
			return err
		}
		if err := echoPayload(ctx, c, []byte("after oversize")); err != nil {
			return fmt.Errorf("same client after ResourceExhausted: %w", err)
		}
		return nil
	})
}
