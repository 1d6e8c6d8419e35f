package wire

import "fmt"

// ttrpctest.Test from tests/proto/ttrpctest.proto.
const (
	TestService = "ttrpctest.Test"
	MethodEcho  = "Echo"
)

type EchoRequest struct {
	Payload     []byte `protobuf:"bytes,1,opt,name=payload,proto3"`
	SleepMs     int64  `protobuf:"varint,2,opt,name=sleep_ms,proto3"`
	FailCode    int32  `protobuf:"varint,3,opt,name=fail_code,proto3"`
	FailMessage string `protobuf:"bytes,4,opt,name=fail_message,proto3"`
}

func (m *EchoRequest) Reset() { *m = EchoRequest{} }
func (m *EchoRequest) String() string {
	return fmt.Sprintf("{payload:%dB sleep_ms:%d fail_code:%d}", len(m.Payload), m.SleepMs, m.FailCode)
}
func (*EchoRequest) ProtoMessage() {}

type Pair struct {
	Key   string `protobuf:"bytes,1,opt,name=key,proto3"`
	Value string `protobuf:"bytes,2,opt,name=value,proto3"`
}

func (m *Pair) Reset()         { *m = Pair{} }
func (m *Pair) String() string { return fmt.Sprintf("%+v", *m) }
func (*Pair) ProtoMessage()    {}

type EchoResponse struct {
	Payload             []byte  `protobuf:"bytes,1,opt,name=payload,proto3"`
	Metadata            []*Pair `protobuf:"bytes,2,rep,name=metadata,proto3"`
	DeadlineRemainingMs int64   `protobuf:"varint,3,opt,name=deadline_remaining_ms,proto3"`
}

func (m *EchoResponse) Reset() { *m = EchoResponse{} }
func (m *EchoResponse) String() string {
	return fmt.Sprintf("{payload:%dB metadata:%v deadline_remaining_ms:%d}", len(m.Payload), m.Metadata, m.DeadlineRemainingMs)
}
func (*EchoResponse) ProtoMessage() {}
