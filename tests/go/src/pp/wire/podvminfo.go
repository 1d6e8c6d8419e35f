package wire

import "fmt"

// podvminfo.PodVMInfo, served by cloud-api-adaptor next to hypervisor.Hypervisor (reference 2).
const (
	PodVMInfoService = "podvminfo.PodVMInfo"
	MethodGetInfo    = "GetInfo"
)

type GetInfoRequest struct {
	PodName      string `protobuf:"bytes,1,opt,name=PodName,proto3"`
	PodNamespace string `protobuf:"bytes,2,opt,name=PodNamespace,proto3"`
	Wait         bool   `protobuf:"varint,3,opt,name=Wait,proto3"`
}

func (m *GetInfoRequest) Reset()         { *m = GetInfoRequest{} }
func (m *GetInfoRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*GetInfoRequest) ProtoMessage()    {}

type GetInfoResponse struct {
	VMID string `protobuf:"bytes,1,opt,name=VMID,proto3"`
}

func (m *GetInfoResponse) Reset()         { *m = GetInfoResponse{} }
func (m *GetInfoResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*GetInfoResponse) ProtoMessage()    {}
