// Package agentstandin is a TEST STAND-IN for the kata-agent: a Go containerd/ttrpc 1.1.1 server on
// a unix socket that serves grpc.Health and every grpc.AgentService method name, so that the agent
// path (shim -> adaptor's agent proxy -> agent-protocol-forwarder -> agent) can be driven end to end
// where no real kata-agent can run. It does nothing an agent does; it only answers and records.
//
// What it answers:
//   - grpc.Health/Check: SERVING; grpc.Health/Version: fixed versions.
//   - ReadStdout/ReadStderr: ReadStreamResponse with `len` bytes of Pattern(container_id, len).
//   - CopyFile: Empty.
//   - every other AgentService method: the request's own bytes as the reply (an echo).
//
// Behaviour requested through call metadata (works on any method):
//   - SleepKey "<ms>": wait that long before answering (ends early, with the context's error, when
//     the caller's deadline passes or the connection closes); each such call is announced on
//     Sleeping() when it starts waiting.
//   - BarrierKey "<group>:<n>": hold the call until n calls of that group have arrived, then
//     release them all; fails with DeadlineExceeded after BarrierWait. It proves n calls were in
//     flight at the agent at the same time without timing anything.
//
// With recording on, every call's service, method, exact payload bytes, metadata and remaining
// deadline are kept for the test to inspect.
package agentstandin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pp/wire"
)

// Metadata keys the stand-in obeys.
const (
	SleepKey    = "x-standin-sleep-ms"
	BarrierKey  = "x-standin-barrier"
	BarrierWait = 30 * time.Second
	// maxSleep bounds any requested sleep, so a lost caller cannot pin a handler forever.
	maxSleep = 2 * time.Minute
)

// Call is one request as it arrived.
type Call struct {
	Service, Method string
	Payload         []byte
	MD              ttrpc.MD
	Timeout         time.Duration // remaining deadline on arrival; 0 when the request had none
	At              time.Time
}

// Agent is a running stand-in.
type Agent struct {
	Socket string

	server   *ttrpc.Server
	listener net.Listener
	record   bool
	served   chan error

	mu       sync.Mutex
	calls    []Call
	barriers map[string]*barrier
	sleeping chan Call
}

type barrier struct {
	n, arrived int
	open       chan struct{}
}

// Start listens on socket (removing a stale one) and serves until Close. With record false
// nothing is kept (benchmarks).
func Start(socket string, record bool) (*Agent, error) {
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		Socket:   socket,
		listener: l,
		record:   record,
		served:   make(chan error, 1),
		barriers: map[string]*barrier{},
		sleeping: make(chan Call, 64),
	}
	a.server, err = ttrpc.NewServer(ttrpc.WithUnaryServerInterceptor(a.intercept))
	if err != nil {
		l.Close()
		return nil, err
	}
	a.register()
	go func() { a.served <- a.server.Serve(context.Background(), l) }()
	return a, nil
}

// Close stops serving and closes every connection.
func (a *Agent) Close() {
	a.server.Close()
	select {
	case <-a.served:
	case <-time.After(5 * time.Second):
	}
	_ = os.Remove(a.Socket)
}

// Calls returns a copy of the calls recorded so far.
func (a *Agent) Calls() []Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Call(nil), a.calls...)
}

// CallsTo returns the recorded calls of one method (any service).
func (a *Agent) CallsTo(method string) []Call {
	var out []Call
	for _, c := range a.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Sleeping announces each call that started a requested sleep.
func (a *Agent) Sleeping() <-chan Call { return a.sleeping }

// Pattern is the deterministic content ReadStdout answers with; tests compute it too.
func Pattern(seed string, n int) []byte {
	b := make([]byte, n)
	var h uint32 = 2166136261
	for i := 0; i < len(seed); i++ {
		h = (h ^ uint32(seed[i])) * 16777619
	}
	for i := range b {
		h ^= h << 13
		h ^= h >> 17
		h ^= h << 5
		b[i] = byte(h)
	}
	return b
}

func (a *Agent) intercept(ctx context.Context, unmarshal ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, method ttrpc.Method) (interface{}, error) {
	md, _ := ttrpc.GetMetadata(ctx)
	if a.record {
		var raw wire.RawMessage
		if err := unmarshal(&raw); err != nil {
			return nil, err
		}
		c := Call{Payload: raw.Data, MD: copyMD(md), At: time.Now()}
		c.Service, c.Method = splitFullMethod(info.FullMethod)
		if dl, ok := ctx.Deadline(); ok {
			c.Timeout = time.Until(dl)
		}
		a.mu.Lock()
		a.calls = append(a.calls, c)
		a.mu.Unlock()
	}
	if v := firstValue(md, BarrierKey); v != "" {
		if err := a.waitBarrier(ctx, v); err != nil {
			return nil, err
		}
	}
	if v := firstValue(md, SleepKey); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "%s: %q is not a count of milliseconds", SleepKey, v)
		}
		d := time.Duration(ms) * time.Millisecond
		if d > maxSleep {
			d = maxSleep
		}
		svc, m := splitFullMethod(info.FullMethod)
		select {
		case a.sleeping <- Call{Service: svc, Method: m, MD: copyMD(md), At: time.Now()}:
		default:
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return method(ctx, unmarshal)
}

func (a *Agent) waitBarrier(ctx context.Context, spec string) error {
	i := strings.LastIndexByte(spec, ':')
	n, err := strconv.Atoi(spec[i+1:])
	if i < 0 || err != nil || n < 1 {
		return status.Errorf(codes.InvalidArgument, "%s: want <group>:<n>, got %q", BarrierKey, spec)
	}
	group := spec[:i]
	a.mu.Lock()
	b := a.barriers[group]
	if b == nil {
		b = &barrier{n: n, open: make(chan struct{})}
		a.barriers[group] = b
	}
	b.arrived++
	if b.arrived == b.n {
		close(b.open)
	}
	a.mu.Unlock()
	t := time.NewTimer(BarrierWait)
	defer t.Stop()
	select {
	case <-b.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		a.mu.Lock()
		arrived := b.arrived
		a.mu.Unlock()
		return status.Errorf(codes.DeadlineExceeded, "barrier %s: only %d of %d calls arrived within %v", group, arrived, n, BarrierWait)
	}
}

func (a *Agent) register() {
	a.server.Register(wire.HealthService, map[string]ttrpc.Method{
		wire.MethodCheck: func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req wire.CheckRequest
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			return &wire.HealthCheckResponse{Status: wire.ServingStatusServing}, nil
		},
		wire.MethodHealthVersion: func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req wire.CheckRequest
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			return &wire.VersionCheckResponse{GrpcVersion: "ttrpc-1.1.1", AgentVersion: "agentstandin (test stand-in)"}, nil
		},
	})
	methods := map[string]ttrpc.Method{}
	for _, name := range wire.AgentMethods {
		methods[name] = echo
	}
	methods["ReadStdout"] = readStream
	methods["ReadStderr"] = readStream
	methods["CopyFile"] = func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
		var req wire.RawMessage // the test checks the recorded bytes; decoding adds nothing here
		if err := unmarshal(&req); err != nil {
			return nil, err
		}
		return &wire.Empty{}, nil
	}
	a.server.Register(wire.AgentService, methods)
}

func echo(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
	var req wire.RawMessage
	if err := unmarshal(&req); err != nil {
		return nil, err
	}
	return &req, nil
}

func readStream(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
	var req wire.ReadStreamRequest
	if err := unmarshal(&req); err != nil {
		return nil, err
	}
	if req.Len > wire.MaxData {
		return nil, status.Errorf(codes.InvalidArgument, "len %d is over %d", req.Len, wire.MaxData)
	}
	return &wire.ReadStreamResponse{Data: Pattern(req.ContainerId, int(req.Len))}, nil
}

func firstValue(md ttrpc.MD, key string) string {
	if v, ok := md.Get(key); ok && len(v) > 0 {
		return v[0]
	}
	return ""
}

func copyMD(md ttrpc.MD) ttrpc.MD {
	if md == nil {
		return nil
	}
	out := ttrpc.MD{}
	for k, v := range md {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func splitFullMethod(full string) (string, string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return full, ""
}

// ErrNotFound is returned by Find when no recorded call matches.
var ErrNotFound = errors.New("no such call recorded")

// Find returns the last recorded call of method whose payload satisfies match.
func (a *Agent) Find(method string, match func(Call) bool) (Call, error) {
	calls := a.CallsTo(method)
	for i := len(calls) - 1; i >= 0; i-- {
		if match == nil || match(calls[i]) {
			return calls[i], nil
		}
	}
	return Call{}, fmt.Errorf("%s: %w (%d calls of it recorded)", method, ErrNotFound, len(calls))
}
