package main

import (
	"bytes"
	"fmt"
	"net"
	"sort"

	"github.com/gogo/protobuf/proto"
	"google.golang.org/grpc/codes"

	"pp/wire"
)

// sendEchoes writes Echo requests by hand in one write, in stream id order.
func sendEchoes(conn net.Conn, reqs map[uint32]*wire.EchoRequest) error {
	ids := make([]uint32, 0, len(reqs))
	for id := range reqs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var out bytes.Buffer
	for _, id := range ids {
		data, err := wire.EncodeRequest(wire.TestService, wire.MethodEcho, reqs[id], 0)
		if err != nil {
			return err
		}
		if err := wire.WriteFrame(&out, id, wire.TypeRequest, 0, data); err != nil {
			return err
		}
	}
	_, err := conn.Write(out.Bytes())
	return err
}

// expectEcho reads one frame: an OK Response on stream whose EchoResponse carries payload.
func expectEcho(conn net.Conn, stream uint32, payload string) error {
	h, data, err := wire.ReadFrame(conn)
	if err != nil {
		return err
	}
	if h.Type != wire.TypeResponse || h.Flags != 0 || h.StreamID != stream {
		return fmt.Errorf("want a Response on stream %d with flags 0, got %v", stream, h)
	}
	resp, err := wire.DecodeResponse(data)
	if err != nil {
		return err
	}
	if code := codes.Code(wire.StatusCode(resp)); code != codes.OK {
		return fmt.Errorf("stream %d: %v %q", stream, code, resp.Status.GetMessage())
	}
	var echo wire.EchoResponse
	if err := proto.Unmarshal(resp.Payload, &echo); err != nil {
		return err
	}
	if string(echo.Payload) != payload {
		return fmt.Errorf("stream %d echoed %q, want %q", stream, echo.Payload, payload)
	}
	return nil
}
