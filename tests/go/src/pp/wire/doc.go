// Package wire holds hand-written gogo-tagged message structs for the services our tests speak
// (hypervisor.Hypervisor, podvminfo.PodVMInfo, ttrpctest.Test) and raw ttrpc frame helpers for
// the cases the Go client library cannot express (even stream ids, lying lengths, garbage data).
//
// The structs carry protobuf struct tags, so gogo/protobuf's reflection marshaller encodes them
// exactly like generated code would; Debian's ttrpc 1.1.1 cannot build kata's generated stubs
// (they need google.golang.org/protobuf), see reference/kata-ttrpc.md section 5.
package wire
