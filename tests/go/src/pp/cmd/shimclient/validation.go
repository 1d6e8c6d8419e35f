package main

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"

	"pp/harness"
	"pp/wire"
)

// requestCase edits a valid CreateVM request into the case under test.
type requestCase struct {
	name string
	edit func(*wire.CreateVMRequest)
}

func setID(id string) func(*wire.CreateVMRequest) {
	return func(r *wire.CreateVMRequest) { r.Id = id }
}

func setAnnotation(key, value string) func(*wire.CreateVMRequest) {
	return func(r *wire.CreateVMRequest) { r.Annotations[key] = value }
}

func dropAnnotation(key string) func(*wire.CreateVMRequest) {
	return func(r *wire.CreateVMRequest) { delete(r.Annotations, key) }
}

const initDataLimit = 64 << 10

// initdataOfSize is a valid initdata TOML document of exactly n bytes (n > 80).
func initdataOfSize(n int) string {
	head := "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"pad\" = \""
	tail := "\"\n"
	return head + strings.Repeat("i", n-len(head)-len(tail)) + tail
}

var invalidCases = []requestCase{
	{"id_empty", setID("")},
	{"id_slash", setID("a/b")},
	{"id_dotdot", setID("..")},
	{"id_space", setID("a b")},
	{"id_129_chars", setID(strings.Repeat("a", 129))},
	{"sandbox_name_missing", dropAnnotation(wire.AnnotSandboxName)},
	{"sandbox_name_empty", setAnnotation(wire.AnnotSandboxName, "")},
	{"sandbox_namespace_missing", dropAnnotation(wire.AnnotSandboxNamespace)},
	{"sandbox_namespace_empty", setAnnotation(wire.AnnotSandboxNamespace, "")},
	{"vcpus_abc", setAnnotation(wire.AnnotVCPUs, "abc")},
	{"vcpus_negative", setAnnotation(wire.AnnotVCPUs, "-1")},
	{"vcpus_1000000", setAnnotation(wire.AnnotVCPUs, "1000000")},
	{"memory_abc", setAnnotation(wire.AnnotMemory, "abc")},
	{"memory_1", setAnnotation(wire.AnnotMemory, "1")},
	{"memory_99999999999", setAnnotation(wire.AnnotMemory, "99999999999")},
	{"gpus_x", setAnnotation(wire.AnnotGPUs, "x")},
	{"gpus_1000", setAnnotation(wire.AnnotGPUs, "1000")},
	{"initdata_over_64KiB", setAnnotation(wire.AnnotInitData, initdataOfSize(initDataLimit+1))},
	{"initdata_not_toml", setAnnotation(wire.AnnotInitData, "this is [not toml")},
	{"initdata_wrong_version", setAnnotation(wire.AnnotInitData, "version = \"9.9\"\nalgorithm = \"sha256\"\n")},
}

// validEdgeCases sit at the edge of what is allowed.
var validEdgeCases = []requestCase{
	{"optional_annotations_empty", func(r *wire.CreateVMRequest) {
		for _, key := range []string{wire.AnnotVCPUs, wire.AnnotMemory, wire.AnnotGPUs, wire.AnnotImage,
			wire.AnnotMachineType, wire.AnnotGPUModel, wire.AnnotInitData} {
			r.Annotations[key] = ""
		}
	}},
	{"initdata_64KiB", setAnnotation(wire.AnnotInitData, initdataOfSize(initDataLimit))},
}

// validationChecks: every invalid request gets InvalidArgument with a message and writes nothing;
// every edge case is accepted and cleans up on StopVM.
func (e *env) validationChecks(r *harness.Runner, st style) {
	h, err := newClient(e.socket, st)
	if err != nil {
		r.Run(st.name+"/connect", func() error { return err })
		return
	}
	defer h.Close()
	for i, c := range invalidCases {
		id := fmt.Sprintf("%s-invalid-%d", st.name, i)
		req := sandboxRequest(id, "pod-"+id)
		c.edit(req)
		r.Run(st.name+"/reject_"+c.name, func() error {
			before := e.snapshot()
			_, err := h.CreateVM(req)
			if err := harness.ExpectCodeMessage(err, codes.InvalidArgument); err != nil {
				return err
			}
			if after := e.snapshot(); after != before {
				return fmt.Errorf("the rejected request changed the disk: %q -> %q", before, after)
			}
			return nil
		})
	}
	// The id becomes part of <pods-dir>/<id>/agent.ttrpc, a unix socket path (at most 107 bytes):
	// the longest id that fits is accepted, one more character is refused.
	longest := 107 - len(e.podsDir) - len("/") - len("/agent.ttrpc")
	if longest > 128 {
		longest = 128
	}
	edges := append([]requestCase{{fmt.Sprintf("id_%d_chars", longest), setID(strings.Repeat("Az09_-", 22)[:longest])}},
		validEdgeCases...)
	if longest < 128 {
		tooLong := sandboxRequest("x", "pod-too-long")
		tooLong.Id = strings.Repeat("b", longest+1)
		r.Run(st.name+"/reject_id_too_long_for_socket_path", func() error {
			_, err := h.CreateVM(tooLong)
			return harness.ExpectCodeMessage(err, codes.InvalidArgument)
		})
	}
	for i, c := range edges {
		id := fmt.Sprintf("%s-edge-%d", st.name, i)
		req := sandboxRequest(id, "pod-"+id)
		c.edit(req)
		r.Run(st.name+"/accept_"+c.name, func() error {
			path, err := h.CreateVM(req)
			if err != nil {
				return err
			}
			if err := e.expectCreated(req.Id, path); err != nil {
				return err
			}
			if err := h.StopVM(req.Id); err != nil {
				return fmt.Errorf("StopVM: %w", err)
			}
			return e.expectGone(req.Id)
		})
	}
}
