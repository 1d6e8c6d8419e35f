package wire

import "fmt"

// Service and method names of hypervisor.proto (package hypervisor).
const (
	HypervisorService = "hypervisor.Hypervisor"
	MethodCreateVM    = "CreateVM"
	MethodStartVM     = "StartVM"
	MethodStopVM      = "StopVM"
	MethodVersion     = "Version"
)

// Annotation keys the kata shim always sends with CreateVM (reference 3.1).
const (
	AnnotSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotMachineType      = "io.katacontainers.config.hypervisor.machine_type"
	AnnotImage            = "io.katacontainers.config.hypervisor.image"
	AnnotVCPUs            = "io.katacontainers.config.hypervisor.default_vcpus"
	AnnotMemory           = "io.katacontainers.config.hypervisor.default_memory"
	AnnotInitData         = "io.katacontainers.config.hypervisor.cc_init_data"
	AnnotGPUs             = "io.katacontainers.config.hypervisor.default_gpus"
	AnnotGPUModel         = "io.katacontainers.config.hypervisor.default_gpu_model"
)

type VersionRequest struct {
	Version string `protobuf:"bytes,1,opt,name=version,proto3"`
}

func (m *VersionRequest) Reset()         { *m = VersionRequest{} }
func (m *VersionRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*VersionRequest) ProtoMessage()    {}

type VersionResponse struct {
	Version string `protobuf:"bytes,1,opt,name=version,proto3"`
}

func (m *VersionResponse) Reset()         { *m = VersionResponse{} }
func (m *VersionResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*VersionResponse) ProtoMessage()    {}

type CreateVMRequest struct {
	Id                   string            `protobuf:"bytes,1,opt,name=id,proto3"`
	Annotations          map[string]string `protobuf:"bytes,2,rep,name=annotations,proto3" protobuf_key:"bytes,1,opt,name=key,proto3" protobuf_val:"bytes,2,opt,name=value,proto3"`
	NetworkNamespacePath string            `protobuf:"bytes,3,opt,name=networkNamespacePath,proto3"`
}

func (m *CreateVMRequest) Reset()         { *m = CreateVMRequest{} }
func (m *CreateVMRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*CreateVMRequest) ProtoMessage()    {}

type CreateVMResponse struct {
	AgentSocketPath string `protobuf:"bytes,1,opt,name=agentSocketPath,proto3"`
}

func (m *CreateVMResponse) Reset()         { *m = CreateVMResponse{} }
func (m *CreateVMResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*CreateVMResponse) ProtoMessage()    {}

type StartVMRequest struct {
	Id string `protobuf:"bytes,1,opt,name=id,proto3"`
}

func (m *StartVMRequest) Reset()         { *m = StartVMRequest{} }
func (m *StartVMRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*StartVMRequest) ProtoMessage()    {}

type StartVMResponse struct{}

func (m *StartVMResponse) Reset()         { *m = StartVMResponse{} }
func (m *StartVMResponse) String() string { return "{}" }
func (*StartVMResponse) ProtoMessage()    {}

type StopVMRequest struct {
	Id string `protobuf:"bytes,1,opt,name=id,proto3"`
}

func (m *StopVMRequest) Reset()         { *m = StopVMRequest{} }
func (m *StopVMRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*StopVMRequest) ProtoMessage()    {}

type StopVMResponse struct{}

func (m *StopVMResponse) Reset()         { *m = StopVMResponse{} }
func (m *StopVMResponse) String() string { return "{}" }
func (*StopVMResponse) ProtoMessage()    {}
