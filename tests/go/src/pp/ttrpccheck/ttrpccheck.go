// Package ttrpccheck holds the generic ttrpc checks every server of ours must pass, whatever it
// serves: unknown service/method, oversized frames, even stream ids, unparsable requests, and the
// shape of a Response frame. Raw checks write frames by hand on their own connection.
package ttrpccheck

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"
	"google.golang.org/grpc/codes"

	"pp/harness"
	"pp/wire"
)

// ioTimeout bounds every raw read and write, so a silent peer fails a check instead of hanging it.
const ioTimeout = 30 * time.Second

// Target is a server socket plus one method it serves and a request it answers with OK, used to
// prove a connection still works after abuse.
type Target struct {
	Socket  string
	Service string
	Method  string
	Request proto.Message
}

// UnknownService calls a service the server does not have: Unimplemented.
func UnknownService(t Target) error {
	return callExpect(t, "no.such.Service", t.Method, codes.Unimplemented)
}

// UnknownMethod calls a method the service does not have: Unimplemented.
func UnknownMethod(t Target) error {
	return callExpect(t, t.Service, "NoSuchMethod", codes.Unimplemented)
}

func callExpect(t Target, service, method string, want codes.Code) error {
	conn, err := net.Dial("unix", t.Socket)
	if err != nil {
		return err
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var resp wire.VersionResponse // any message: the call must fail before a payload matters
	return harness.ExpectCodeMessage(client.Call(ctx, service, method, t.Request, &resp), want)
}

// ResponseShape sends a valid request on stream 1 by hand: the reply is one Response frame on
// stream 1 with flags 0 and status absent or code 0.
func ResponseShape(t Target) error {
	c, err := dialRaw(t.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.sendRequest(1, t); err != nil {
		return err
	}
	return c.expect(1, codes.OK)
}

// EvenStreamID sends a valid request on stream 2: InvalidArgument on stream 2, and the
// connection keeps working on stream 1.
func EvenStreamID(t Target) error {
	c, err := dialRaw(t.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.sendRequest(2, t); err != nil {
		return err
	}
	if err := c.expect(2, codes.InvalidArgument); err != nil {
		return err
	}
	return c.stillUsable(1, t)
}

// Unparsable sends Request data ff ff ff on stream 1: InvalidArgument on stream 1, and the
// connection keeps working on stream 3.
func Unparsable(t Target) error {
	c, err := dialRaw(t.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := wire.WriteFrame(c, 1, wire.TypeRequest, 0, []byte{0xff, 0xff, 0xff}); err != nil {
		return err
	}
	if err := c.expect(1, codes.InvalidArgument); err != nil {
		return err
	}
	return c.stillUsable(3, t)
}

// Oversize sends a Request frame with 4 MiB + 1 bytes of data on stream 1: ResourceExhausted on
// stream 1, and the connection keeps working on stream 3.
func Oversize(t Target) error {
	c, err := dialRaw(t.Socket)
	if err != nil {
		return err
	}
	defer c.Close()
	n := wire.MaxData + 1
	sent := make(chan error, 1)
	go func() { // the peer may answer before it has drained our data
		if err := wire.WriteHeader(c, wire.Header{Length: uint32(n), StreamID: 1, Type: wire.TypeRequest}); err != nil {
			sent <- err
			return
		}
		_, err := c.Write(make([]byte, n))
		sent <- err
	}()
	if err := c.expect(1, codes.ResourceExhausted); err != nil {
		return err
	}
	if err := <-sent; err != nil {
		return fmt.Errorf("writing the oversized frame: %w", err)
	}
	return c.stillUsable(3, t)
}

type rawConn struct{ net.Conn }

func dialRaw(path string) (*rawConn, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(ioTimeout))
	return &rawConn{conn}, nil
}

func (c *rawConn) sendRequest(stream uint32, t Target) error {
	data, err := wire.EncodeRequest(t.Service, t.Method, t.Request, 0)
	if err != nil {
		return err
	}
	return wire.WriteFrame(c, stream, wire.TypeRequest, 0, data)
}

func (c *rawConn) stillUsable(stream uint32, t Target) error {
	if err := c.sendRequest(stream, t); err != nil {
		return fmt.Errorf("connection unusable afterwards: %w", err)
	}
	if err := c.expect(stream, codes.OK); err != nil {
		return fmt.Errorf("connection unusable afterwards: %w", err)
	}
	return nil
}

// expect reads one frame and checks it is a Response on stream with flags 0 and code want.
func (c *rawConn) expect(stream uint32, want codes.Code) error {
	h, data, err := wire.ReadFrame(c)
	if err != nil {
		return fmt.Errorf("reading reply on stream %d: %w", stream, err)
	}
	if h.Type != wire.TypeResponse || h.Flags != 0 || h.StreamID != stream {
		return fmt.Errorf("want a Response on stream %d with flags 0, got %v", stream, h)
	}
	resp, err := wire.DecodeResponse(data)
	if err != nil {
		return err
	}
	if got := codes.Code(wire.StatusCode(resp)); got != want {
		return fmt.Errorf("stream %d: want %v, got %v %q", stream, want, got, resp.Status.GetMessage())
	}
	if want != codes.OK && resp.Status.GetMessage() == "" {
		return fmt.Errorf("stream %d: %v without a message", stream, want)
	}
	return nil
}
