package wire

import "fmt"

// The kata agent's services (proto/agent/agent.proto, health.proto; package grpc), as the shim
// calls them through agent.ttrpc. Only the messages the agent-chain tests need are written out; the
// field numbers follow proto/agent/*.proto. Structs the chain rewrites keep XXX_unrecognized, so a
// test sees any field it did not send instead of gogo dropping it silently.
const (
	AgentService  = "grpc.AgentService"
	HealthService = "grpc.Health"

	MethodCheck           = "Check"
	MethodHealthVersion   = "Version"
	MethodCreateSandbox   = "CreateSandbox"
	MethodCreateContainer = "CreateContainer"
	MethodStartContainer  = "StartContainer"
	MethodCopyFile        = "CopyFile"
	MethodReadStdout      = "ReadStdout"
	MethodReadStderr      = "ReadStderr"
	MethodExecProcess     = "ExecProcess"
	MethodWaitProcess     = "WaitProcess"
)

// AgentMethods lists every grpc.AgentService method (proto/agent/agent.proto order).
var AgentMethods = []string{
	"CreateContainer", "StartContainer", "RemoveContainer", "ExecProcess", "SignalProcess", "WaitProcess",
	"UpdateContainer", "UpdateEphemeralMounts", "StatsContainer", "PauseContainer", "ResumeContainer",
	"RemoveStaleVirtiofsShareMounts", "GetDiagnosticData", "WriteStdin", "ReadStdout", "ReadStderr",
	"CloseStdin", "TtyWinResize", "UpdateInterface", "UpdateRoutes", "ListInterfaces", "ListRoutes",
	"AddARPNeighbors", "GetIPTables", "SetIPTables", "GetMetrics", "MemAgentMemcgSet", "MemAgentCompactSet",
	"CreateSandbox", "DestroySandbox", "OnlineCPUMem", "ReseedRandomDev", "GetGuestDetails",
	"MemHotplugByProbe", "SetGuestDateTime", "CopyFile", "GetOOMEvent", "AddSwap", "AddSwapPath",
	"GetVolumeStats", "ResizeVolume", "SetPolicy",
}

// RawMessage is any message as its encoded bytes: gogo's Marshal/Unmarshal hand them through
// untouched, so a server can record exactly what arrived and a client can send exactly what it
// built (including bytes that are not a valid protobuf).
type RawMessage struct{ Data []byte }

func (m *RawMessage) Reset()                   { m.Data = nil }
func (m *RawMessage) String() string           { return fmt.Sprintf("raw(%dB)", len(m.Data)) }
func (*RawMessage) ProtoMessage()              {}
func (m *RawMessage) Marshal() ([]byte, error) { return m.Data, nil }
func (m *RawMessage) Size() int                { return len(m.Data) }
func (m *RawMessage) Unmarshal(b []byte) error {
	m.Data = append([]byte(nil), b...)
	return nil
}

// ---- grpc.Health

type CheckRequest struct {
	Service string `protobuf:"bytes,1,opt,name=service,proto3"`
}

func (m *CheckRequest) Reset()         { *m = CheckRequest{} }
func (m *CheckRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*CheckRequest) ProtoMessage()    {}

const ServingStatusServing = 1

type HealthCheckResponse struct {
	Status int32 `protobuf:"varint,1,opt,name=status,proto3"`
}

func (m *HealthCheckResponse) Reset()         { *m = HealthCheckResponse{} }
func (m *HealthCheckResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*HealthCheckResponse) ProtoMessage()    {}

type VersionCheckResponse struct {
	GrpcVersion  string `protobuf:"bytes,1,opt,name=grpc_version,proto3"`
	AgentVersion string `protobuf:"bytes,2,opt,name=agent_version,proto3"`
}

func (m *VersionCheckResponse) Reset()         { *m = VersionCheckResponse{} }
func (m *VersionCheckResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*VersionCheckResponse) ProtoMessage()    {}

// ---- common agent messages

type Empty struct{}

func (m *Empty) Reset()         { *m = Empty{} }
func (m *Empty) String() string { return "{}" }
func (*Empty) ProtoMessage()    {}

type Storage struct {
	Driver        string   `protobuf:"bytes,1,opt,name=driver,proto3"`
	DriverOptions []string `protobuf:"bytes,2,rep,name=driver_options,proto3"`
	Source        string   `protobuf:"bytes,3,opt,name=source,proto3"`
	Fstype        string   `protobuf:"bytes,4,opt,name=fstype,proto3"`
	Options       []string `protobuf:"bytes,5,rep,name=options,proto3"`
	MountPoint    string   `protobuf:"bytes,6,opt,name=mount_point,proto3"`
	Shared        bool     `protobuf:"varint,8,opt,name=shared,proto3"`
}

func (m *Storage) Reset()         { *m = Storage{} }
func (m *Storage) String() string { return fmt.Sprintf("%+v", *m) }
func (*Storage) ProtoMessage()    {}

type KernelModule struct {
	Name       string   `protobuf:"bytes,1,opt,name=name,proto3"`
	Parameters []string `protobuf:"bytes,2,rep,name=parameters,proto3"`
}

func (m *KernelModule) Reset()         { *m = KernelModule{} }
func (m *KernelModule) String() string { return fmt.Sprintf("%+v", *m) }
func (*KernelModule) ProtoMessage()    {}

type CreateSandboxRequest struct {
	Hostname         string          `protobuf:"bytes,1,opt,name=hostname,proto3"`
	Dns              []string        `protobuf:"bytes,2,rep,name=dns,proto3"`
	Storages         []*Storage      `protobuf:"bytes,3,rep,name=storages,proto3"`
	SandboxPidns     bool            `protobuf:"varint,4,opt,name=sandbox_pidns,proto3"`
	SandboxId        string          `protobuf:"bytes,5,opt,name=sandbox_id,proto3"`
	GuestHookPath    string          `protobuf:"bytes,6,opt,name=guest_hook_path,proto3"`
	KernelModules    []*KernelModule `protobuf:"bytes,7,rep,name=kernel_modules,proto3"`
	XXX_unrecognized []byte          `json:"-"`
}

func (m *CreateSandboxRequest) Reset()         { *m = CreateSandboxRequest{} }
func (m *CreateSandboxRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*CreateSandboxRequest) ProtoMessage()    {}

type StringUser struct {
	Uid            string   `protobuf:"bytes,1,opt,name=uid,proto3"`
	Gid            string   `protobuf:"bytes,2,opt,name=gid,proto3"`
	AdditionalGids []string `protobuf:"bytes,3,rep,name=additionalGids,proto3"`
}

func (m *StringUser) Reset()         { *m = StringUser{} }
func (m *StringUser) String() string { return fmt.Sprintf("%+v", *m) }
func (*StringUser) ProtoMessage()    {}

type Device struct {
	Id            string   `protobuf:"bytes,1,opt,name=id,proto3"`
	Type          string   `protobuf:"bytes,2,opt,name=type,proto3"`
	VmPath        string   `protobuf:"bytes,3,opt,name=vm_path,proto3"`
	ContainerPath string   `protobuf:"bytes,4,opt,name=container_path,proto3"`
	Options       []string `protobuf:"bytes,5,rep,name=options,proto3"`
}

func (m *Device) Reset()         { *m = Device{} }
func (m *Device) String() string { return fmt.Sprintf("%+v", *m) }
func (*Device) ProtoMessage()    {}

// ---- oci.proto (a subset of grpc.Spec)

type Process struct {
	Terminal bool     `protobuf:"varint,1,opt,name=Terminal,proto3"`
	Args     []string `protobuf:"bytes,4,rep,name=Args,proto3"`
	Env      []string `protobuf:"bytes,5,rep,name=Env,proto3"`
	Cwd      string   `protobuf:"bytes,6,opt,name=Cwd,proto3"`
}

func (m *Process) Reset()         { *m = Process{} }
func (m *Process) String() string { return fmt.Sprintf("%+v", *m) }
func (*Process) ProtoMessage()    {}

type Root struct {
	Path     string `protobuf:"bytes,1,opt,name=Path,proto3"`
	Readonly bool   `protobuf:"varint,2,opt,name=Readonly,proto3"`
}

func (m *Root) Reset()         { *m = Root{} }
func (m *Root) String() string { return fmt.Sprintf("%+v", *m) }
func (*Root) ProtoMessage()    {}

type Mount struct {
	Destination string   `protobuf:"bytes,1,opt,name=destination,proto3"`
	Source      string   `protobuf:"bytes,2,opt,name=source,proto3"`
	Type        string   `protobuf:"bytes,3,opt,name=type,proto3"`
	Options     []string `protobuf:"bytes,4,rep,name=options,proto3"`
}

func (m *Mount) Reset()         { *m = Mount{} }
func (m *Mount) String() string { return fmt.Sprintf("%+v", *m) }
func (*Mount) ProtoMessage()    {}

type LinuxNamespace struct {
	Type string `protobuf:"bytes,1,opt,name=Type,proto3"`
	Path string `protobuf:"bytes,2,opt,name=Path,proto3"`
}

func (m *LinuxNamespace) Reset()         { *m = LinuxNamespace{} }
func (m *LinuxNamespace) String() string { return fmt.Sprintf("%+v", *m) }
func (*LinuxNamespace) ProtoMessage()    {}

type Linux struct {
	Sysctl           map[string]string `protobuf:"bytes,3,rep,name=Sysctl,proto3" protobuf_key:"bytes,1,opt,name=key,proto3" protobuf_val:"bytes,2,opt,name=value,proto3"`
	CgroupsPath      string            `protobuf:"bytes,5,opt,name=CgroupsPath,proto3"`
	Namespaces       []*LinuxNamespace `protobuf:"bytes,6,rep,name=Namespaces,proto3"`
	MaskedPaths      []string          `protobuf:"bytes,10,rep,name=MaskedPaths,proto3"`
	ReadonlyPaths    []string          `protobuf:"bytes,11,rep,name=ReadonlyPaths,proto3"`
	XXX_unrecognized []byte            `json:"-"`
}

func (m *Linux) Reset()         { *m = Linux{} }
func (m *Linux) String() string { return fmt.Sprintf("%+v", *m) }
func (*Linux) ProtoMessage()    {}

type Spec struct {
	Version          string            `protobuf:"bytes,1,opt,name=Version,proto3"`
	Process          *Process          `protobuf:"bytes,2,opt,name=Process,proto3"`
	Root             *Root             `protobuf:"bytes,3,opt,name=Root,proto3"`
	Hostname         string            `protobuf:"bytes,4,opt,name=Hostname,proto3"`
	Mounts           []*Mount          `protobuf:"bytes,5,rep,name=Mounts,proto3"`
	Annotations      map[string]string `protobuf:"bytes,7,rep,name=Annotations,proto3" protobuf_key:"bytes,1,opt,name=key,proto3" protobuf_val:"bytes,2,opt,name=value,proto3"`
	Linux            *Linux            `protobuf:"bytes,8,opt,name=Linux,proto3"`
	XXX_unrecognized []byte            `json:"-"`
}

func (m *Spec) Reset() { *m = Spec{} }

// GetAnnotations and GetLinux are nil-safe, like generated getters.
func (m *Spec) GetAnnotations() map[string]string {
	if m == nil {
		return nil
	}
	return m.Annotations
}
func (m *Spec) GetLinux() *Linux {
	if m == nil {
		return nil
	}
	return m.Linux
}
func (m *Linux) GetNamespaces() []*LinuxNamespace {
	if m == nil {
		return nil
	}
	return m.Namespaces
}
func (m *Spec) String() string { return fmt.Sprintf("%+v", *m) }
func (*Spec) ProtoMessage()    {}

type CreateContainerRequest struct {
	ContainerId      string      `protobuf:"bytes,1,opt,name=container_id,proto3"`
	ExecId           string      `protobuf:"bytes,2,opt,name=exec_id,proto3"`
	StringUser       *StringUser `protobuf:"bytes,3,opt,name=string_user,proto3"`
	Devices          []*Device   `protobuf:"bytes,4,rep,name=devices,proto3"`
	Storages         []*Storage  `protobuf:"bytes,5,rep,name=storages,proto3"`
	OCI              *Spec       `protobuf:"bytes,6,opt,name=OCI,proto3"`
	SandboxPidns     bool        `protobuf:"varint,7,opt,name=sandbox_pidns,proto3"`
	StdoutPort       uint32      `protobuf:"varint,10,opt,name=stdout_port,proto3"`
	XXX_unrecognized []byte      `json:"-"`
}

func (m *CreateContainerRequest) Reset()         { *m = CreateContainerRequest{} }
func (m *CreateContainerRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*CreateContainerRequest) ProtoMessage()    {}

type StartContainerRequest struct {
	ContainerId string `protobuf:"bytes,1,opt,name=container_id,proto3"`
}

func (m *StartContainerRequest) Reset()         { *m = StartContainerRequest{} }
func (m *StartContainerRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*StartContainerRequest) ProtoMessage()    {}

type CopyFileRequest struct {
	Path     string `protobuf:"bytes,1,opt,name=path,proto3"`
	FileSize int64  `protobuf:"varint,2,opt,name=file_size,proto3"`
	FileMode uint32 `protobuf:"varint,3,opt,name=file_mode,proto3"`
	DirMode  uint32 `protobuf:"varint,4,opt,name=dir_mode,proto3"`
	Uid      int32  `protobuf:"varint,5,opt,name=uid,proto3"`
	Gid      int32  `protobuf:"varint,6,opt,name=gid,proto3"`
	Offset   int64  `protobuf:"varint,7,opt,name=offset,proto3"`
	Data     []byte `protobuf:"bytes,8,opt,name=data,proto3"`
}

func (m *CopyFileRequest) Reset() { *m = CopyFileRequest{} }
func (m *CopyFileRequest) String() string {
	return fmt.Sprintf("{path:%s file_size:%d offset:%d data:%dB}", m.Path, m.FileSize, m.Offset, len(m.Data))
}
func (*CopyFileRequest) ProtoMessage() {}

type ReadStreamRequest struct {
	ContainerId string `protobuf:"bytes,1,opt,name=container_id,proto3"`
	ExecId      string `protobuf:"bytes,2,opt,name=exec_id,proto3"`
	Len         uint32 `protobuf:"varint,3,opt,name=len,proto3"`
}

func (m *ReadStreamRequest) Reset()         { *m = ReadStreamRequest{} }
func (m *ReadStreamRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*ReadStreamRequest) ProtoMessage()    {}

type ReadStreamResponse struct {
	Data []byte `protobuf:"bytes,1,opt,name=data,proto3"`
}

func (m *ReadStreamResponse) Reset()         { *m = ReadStreamResponse{} }
func (m *ReadStreamResponse) String() string { return fmt.Sprintf("{data:%dB}", len(m.Data)) }
func (*ReadStreamResponse) ProtoMessage()    {}

// ExecProcess, WaitProcess (agent.proto). The test image's TEST AGENT runs Process.Args directly in
// the VM for them (podvm-image/test-agent/test_agent.cc).
type ExecProcessRequest struct {
	ContainerId string      `protobuf:"bytes,1,opt,name=container_id,proto3"`
	ExecId      string      `protobuf:"bytes,2,opt,name=exec_id,proto3"`
	StringUser  *StringUser `protobuf:"bytes,3,opt,name=string_user,proto3"`
	Process     *Process    `protobuf:"bytes,4,opt,name=process,proto3"`
	StdinPort   uint32      `protobuf:"varint,5,opt,name=stdin_port,proto3"`
	StdoutPort  uint32      `protobuf:"varint,6,opt,name=stdout_port,proto3"`
	StderrPort  uint32      `protobuf:"varint,7,opt,name=stderr_port,proto3"`
}

func (m *ExecProcessRequest) Reset()         { *m = ExecProcessRequest{} }
func (m *ExecProcessRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*ExecProcessRequest) ProtoMessage()    {}

type WaitProcessRequest struct {
	ContainerId string `protobuf:"bytes,1,opt,name=container_id,proto3"`
	ExecId      string `protobuf:"bytes,2,opt,name=exec_id,proto3"`
}

func (m *WaitProcessRequest) Reset()         { *m = WaitProcessRequest{} }
func (m *WaitProcessRequest) String() string { return fmt.Sprintf("%+v", *m) }
func (*WaitProcessRequest) ProtoMessage()    {}

type WaitProcessResponse struct {
	Status int32 `protobuf:"varint,1,opt,name=status,proto3"`
}

func (m *WaitProcessResponse) Reset()         { *m = WaitProcessResponse{} }
func (m *WaitProcessResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*WaitProcessResponse) ProtoMessage()    {}
