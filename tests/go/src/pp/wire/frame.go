package wire

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"
)

// Frame layout from reference/kata-ttrpc.md 1.1.
const (
	HeaderLen       = 10
	MaxData         = 4 << 20 // the largest data a peer must accept in one frame
	TypeRequest     = 0x1
	TypeResponse    = 0x2
	TypeData        = 0x3
	maxReadableData = 16 << 20 // ReadFrame refuses more, so a broken peer cannot exhaust us
)

// Header is a decoded frame header. Length is what the header claims, not what was sent.
type Header struct {
	Length   uint32
	StreamID uint32
	Type     uint8
	Flags    uint8
}

func (h Header) String() string {
	return fmt.Sprintf("{len:%d stream:%d type:%d flags:%#x}", h.Length, h.StreamID, h.Type, h.Flags)
}

// WriteHeader writes only a header; the caller sends (or withholds) the data itself.
func WriteHeader(w io.Writer, h Header) error {
	var b [HeaderLen]byte
	binary.BigEndian.PutUint32(b[0:4], h.Length)
	binary.BigEndian.PutUint32(b[4:8], h.StreamID)
	b[8] = h.Type
	b[9] = h.Flags
	_, err := w.Write(b[:])
	return err
}

// WriteFrame writes one whole frame whose header length is len(data).
func WriteFrame(w io.Writer, streamID uint32, typ, flags uint8, data []byte) error {
	buf := make([]byte, HeaderLen+len(data))
	binary.BigEndian.PutUint32(buf[0:4], uint32(len(data)))
	binary.BigEndian.PutUint32(buf[4:8], streamID)
	buf[8] = typ
	buf[9] = flags
	copy(buf[HeaderLen:], data)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame. It fails on a claimed length above 16 MiB instead of reading it.
func ReadFrame(r io.Reader) (Header, []byte, error) {
	var b [HeaderLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Header{}, nil, err
	}
	h := Header{
		Length:   binary.BigEndian.Uint32(b[0:4]),
		StreamID: binary.BigEndian.Uint32(b[4:8]),
		Type:     b[8],
		Flags:    b[9],
	}
	if h.Length > maxReadableData {
		return h, nil, fmt.Errorf("frame %v claims more than %d bytes", h, maxReadableData)
	}
	data := make([]byte, h.Length)
	if _, err := io.ReadFull(r, data); err != nil {
		return h, nil, fmt.Errorf("frame %v: reading data: %w", h, err)
	}
	return h, data, nil
}

// EncodeRequest marshals a ttrpc Request envelope around msg.
func EncodeRequest(service, method string, msg proto.Message, timeoutNano int64) ([]byte, error) {
	payload, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(&ttrpc.Request{
		Service:     service,
		Method:      method,
		Payload:     payload,
		TimeoutNano: timeoutNano,
	})
}

// DecodeResponse unmarshals a ttrpc Response envelope.
func DecodeResponse(data []byte) (*ttrpc.Response, error) {
	var resp ttrpc.Response
	if err := proto.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("response does not parse: %w", err)
	}
	return &resp, nil
}

// StatusCode is the response's gRPC code; a missing status means OK (0).
func StatusCode(resp *ttrpc.Response) int32 {
	if resp.Status == nil {
		return 0
	}
	return resp.Status.Code
}
