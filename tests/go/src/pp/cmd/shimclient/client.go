package main

import (
	"context"
	"net"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"

	"pp/wire"
)

// style is how one kata runtime calls the adaptor (reference/kata-ttrpc.md 3.1 and 3.2).
type style struct {
	name        string
	connPerCall bool                     // the Go shim dials for every call; runtime-rs keeps one
	timeouts    map[string]time.Duration // timeout_nano the runtime puts on each method; absent = 0
}

var (
	goShim = style{
		name:        "shim",
		connPerCall: true,
		timeouts:    map[string]time.Duration{wire.MethodStartVM: 600 * time.Second},
	}
	runtimeRs = style{
		name: "rs",
		timeouts: map[string]time.Duration{
			wire.MethodStartVM: 10000 * time.Second, // upstream's ms/s mix-up, sent as is
			wire.MethodStopVM:  time.Second,
		},
	}
	// load is used by the concurrency checks: kata's StartVM deadline and nothing else, so that a
	// busy two-core machine cannot turn a slow reply into a false failure.
	load = style{name: "load", timeouts: map[string]time.Duration{wire.MethodStartVM: 600 * time.Second}}
)

// localBound caps how long this program waits for any call whose wire deadline is not the point
// of the check; the request itself still carries the runtime's timeout_nano.
const localBound = 60 * time.Second

type wireTimeoutKey struct{}

// hvClient makes calls in one style. With connPerCall it dials per call; otherwise all calls
// share one connection.
type hvClient struct {
	style  style
	socket string
	shared *ttrpc.Client
}

func newClient(socket string, st style) (*hvClient, error) {
	h := &hvClient{style: st, socket: socket}
	if !st.connPerCall {
		c, err := h.dial()
		if err != nil {
			return nil, err
		}
		h.shared = c
	}
	return h, nil
}

func (h *hvClient) Close() {
	if h.shared != nil {
		h.shared.Close()
	}
}

func (h *hvClient) dial() (*ttrpc.Client, error) {
	conn, err := net.Dial("unix", h.socket)
	if err != nil {
		return nil, err
	}
	return ttrpc.NewClient(conn, ttrpc.WithUnaryClientInterceptor(setWireTimeout)), nil
}

// setWireTimeout replaces the request's timeout_nano with the runtime's value when the call
// carries one, so the local wait bound never shows on the wire.
func setWireTimeout(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response, _ *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
	if d, ok := ctx.Value(wireTimeoutKey{}).(time.Duration); ok {
		req.TimeoutNano = d.Nanoseconds()
	}
	return invoke(ctx, req, resp)
}

// call sends one request. deadline 0 means "as the runtime does"; otherwise the call carries
// that real deadline.
func (h *hvClient) call(service, method string, deadline time.Duration, req, resp proto.Message) error {
	var ctx context.Context
	var cancel context.CancelFunc
	if deadline > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), deadline)
	} else {
		ctx, cancel = context.WithTimeout(context.Background(), localBound)
		ctx = context.WithValue(ctx, wireTimeoutKey{}, h.style.timeouts[method])
	}
	defer cancel()

	c := h.shared
	if c == nil {
		var err error
		if c, err = h.dial(); err != nil {
			return err
		}
		defer c.Close()
	}
	return c.Call(ctx, service, method, req, resp)
}

func (h *hvClient) CreateVM(req *wire.CreateVMRequest) (string, error) {
	var resp wire.CreateVMResponse
	err := h.call(wire.HypervisorService, wire.MethodCreateVM, 0, req, &resp)
	return resp.AgentSocketPath, err
}

func (h *hvClient) StartVM(id string, deadline time.Duration) error {
	return h.call(wire.HypervisorService, wire.MethodStartVM, deadline, &wire.StartVMRequest{Id: id}, &wire.StartVMResponse{})
}

func (h *hvClient) StopVM(id string) error {
	return h.call(wire.HypervisorService, wire.MethodStopVM, 0, &wire.StopVMRequest{Id: id}, &wire.StopVMResponse{})
}

func (h *hvClient) Version() (string, error) {
	var resp wire.VersionResponse
	err := h.call(wire.HypervisorService, wire.MethodVersion, 0, &wire.VersionRequest{}, &resp)
	return resp.Version, err
}

func (h *hvClient) GetInfo(req *wire.GetInfoRequest, deadline time.Duration) (string, error) {
	var resp wire.GetInfoResponse
	err := h.call(wire.PodVMInfoService, wire.MethodGetInfo, deadline, req, &resp)
	return resp.VMID, err
}

// sandboxRequest is a CreateVM as the shim sends it: all nine annotations, some empty.
func sandboxRequest(id, pod string) *wire.CreateVMRequest {
	return &wire.CreateVMRequest{
		Id: id,
		Annotations: map[string]string{
			wire.AnnotSandboxName:      pod,
			wire.AnnotSandboxNamespace: "default",
			wire.AnnotMachineType:      "",
			wire.AnnotImage:            "",
			wire.AnnotVCPUs:            "1",
			wire.AnnotMemory:           "2048",
			wire.AnnotInitData:         "",
			wire.AnnotGPUs:             "0",
			wire.AnnotGPUModel:         "",
		},
	}
}
