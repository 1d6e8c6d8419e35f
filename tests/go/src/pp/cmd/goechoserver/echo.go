package main

import (
	"context"
	"sort"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pp/wire"
)

// echo implements ttrpctest.Test/Echo as tests/proto/ttrpctest.proto describes it.
func echo(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
	var req wire.EchoRequest
	if err := unmarshal(&req); err != nil {
		return nil, err
	}
	if req.SleepMs > 0 {
		timer := time.NewTimer(time.Duration(req.SleepMs) * time.Millisecond)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err() // ttrpc maps DeadlineExceeded and Canceled to their codes
		}
	}
	if req.FailCode != 0 {
		return nil, status.Error(codes.Code(req.FailCode), req.FailMessage)
	}
	resp := &wire.EchoResponse{Payload: req.Payload, Metadata: metadata(ctx), DeadlineRemainingMs: -1}
	if deadline, ok := ctx.Deadline(); ok {
		resp.DeadlineRemainingMs = time.Until(deadline).Milliseconds()
	}
	return resp, nil
}

// metadata lists the request metadata. ttrpc 1.1.1 hands it to handlers as a map, so the order
// between keys is lost; keys come sorted, each key's values in the order received.
func metadata(ctx context.Context) []*wire.Pair {
	md, ok := ttrpc.GetMetadata(ctx)
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pairs []*wire.Pair
	for _, k := range keys {
		for _, v := range md[k] {
			pairs = append(pairs, &wire.Pair{Key: k, Value: v})
		}
	}
	return pairs
}
