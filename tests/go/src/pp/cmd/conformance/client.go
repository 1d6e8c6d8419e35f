package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net"

	"github.com/containerd/ttrpc"

	"pp/wire"
)

// suite holds what every echo scenario needs.
type suite struct {
	socket string
}

// dial opens a new connection with its own client.
func (s *suite) dial(opts ...ttrpc.ClientOpts) (*ttrpc.Client, error) {
	conn, err := net.Dial("unix", s.socket)
	if err != nil {
		return nil, err
	}
	return ttrpc.NewClient(conn, opts...), nil
}

func echo(ctx context.Context, c *ttrpc.Client, req *wire.EchoRequest) (*wire.EchoResponse, error) {
	var resp wire.EchoResponse
	if err := c.Call(ctx, wire.TestService, wire.MethodEcho, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// echoPayload sends payload and checks it comes back unchanged.
func echoPayload(ctx context.Context, c *ttrpc.Client, payload []byte) error {
	resp, err := echo(ctx, c, &wire.EchoRequest{Payload: payload})
	if err != nil {
		return err
	}
	if !bytes.Equal(resp.Payload, payload) {
		return fmt.Errorf("sent %d bytes, got %d bytes back that differ", len(payload), len(resp.Payload))
	}
	return nil
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}
