package main

import (
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	"pp/harness"
	"pp/wire"
)

// shortDeadline is the deadline the deadline checks put on a call that cannot finish in time.
const shortDeadline = 300 * time.Millisecond

// lifecycleChecks runs one sandbox through CreateVM, StartVM, GetInfo and StopVM, then the
// special pods of the test provider (slow-*, fail-*), all in style st.
func (e *env) lifecycleChecks(r *harness.Runner, st style) {
	h, err := newClient(e.socket, st)
	if err != nil {
		r.Run(st.name+"/connect", func() error { return err })
		return
	}
	defer h.Close()
	name := func(s string) string { return st.name + "/" + s }
	id := st.name + "-sandbox"
	pod := "pod-" + id
	req := sandboxRequest(id, pod)

	r.Run(name("version"), func() error {
		v, err := h.Version()
		if err == nil && v == "" {
			err = fmt.Errorf("empty version")
		}
		return err
	})
	r.Run(name("create"), func() error {
		path, err := h.CreateVM(req)
		if err != nil {
			return err
		}
		return e.expectCreated(id, path)
	})
	r.Run(name("create_same_request_again"), func() error {
		path, err := h.CreateVM(req)
		if err != nil {
			return err
		}
		return e.expectCreated(id, path)
	})
	r.Run(name("create_other_request_same_id"), func() error {
		other := sandboxRequest(id, pod)
		other.Annotations[wire.AnnotVCPUs] = "2"
		_, err := h.CreateVM(other)
		return harness.ExpectCodeMessage(err, codes.AlreadyExists)
	})
	r.Run(name("getinfo_wait_before_start"), func() error {
		_, err := h.GetInfo(&wire.GetInfoRequest{PodName: pod, PodNamespace: "default", Wait: true}, shortDeadline)
		return harness.ExpectCode(err, codes.DeadlineExceeded)
	})
	r.Run(name("start"), func() error { return h.StartVM(id, 0) })
	r.Run(name("getinfo_after_start"), func() error {
		vmid, err := h.GetInfo(&wire.GetInfoRequest{PodName: pod, PodNamespace: "default"}, 0)
		if err == nil && vmid == "" {
			err = fmt.Errorf("empty VMID")
		}
		return err
	})
	r.Run(name("getinfo_unknown_pod"), func() error {
		_, err := h.GetInfo(&wire.GetInfoRequest{PodName: "no-such-pod", PodNamespace: "default"}, 0)
		return harness.ExpectCode(err, codes.NotFound)
	})
	r.Run(name("stop"), func() error {
		if err := h.StopVM(id); err != nil {
			return err
		}
		return e.expectGone(id)
	})
	r.Run(name("stop_unknown"), func() error { return h.StopVM(st.name + "-never-created") })
	r.Run(name("start_unknown"), func() error {
		return harness.ExpectCode(h.StartVM(st.name+"-never-created", 0), codes.NotFound)
	})
	r.Run(name("slow_start_deadline"), func() error { return e.slowStart(h, st.name+"-slow") })
	r.Run(name("failed_start"), func() error { return e.failedStart(h, st.name+"-fail") })
}

// slowStart: pod slow-* takes about 3 s to start, so StartVM under a 300 ms deadline fails with
// DeadlineExceeded; StopVM then still cleans up.
func (e *env) slowStart(h *hvClient, id string) error {
	path, err := h.CreateVM(sandboxRequest(id, "slow-"+id))
	if err != nil {
		return fmt.Errorf("CreateVM: %w", err)
	}
	if err := e.expectCreated(id, path); err != nil {
		return err
	}
	if err := harness.ExpectCode(h.StartVM(id, shortDeadline), codes.DeadlineExceeded); err != nil {
		return fmt.Errorf("StartVM: %w", err)
	}
	if err := h.StopVM(id); err != nil {
		return fmt.Errorf("StopVM after the deadline: %w", err)
	}
	return e.expectGone(id)
}

// failedStart: pod fail-* fails StartVM with FailedPrecondition; StopVM then is OK.
func (e *env) failedStart(h *hvClient, id string) error {
	if _, err := h.CreateVM(sandboxRequest(id, "fail-"+id)); err != nil {
		return fmt.Errorf("CreateVM: %w", err)
	}
	if err := harness.ExpectCodeMessage(h.StartVM(id, 0), codes.FailedPrecondition); err != nil {
		return fmt.Errorf("StartVM: %w", err)
	}
	if err := h.StopVM(id); err != nil {
		return fmt.Errorf("StopVM after the failed start: %w", err)
	}
	return e.expectGone(id)
}
