package main

import (
	"fmt"
	"sync"

	"pp/harness"
	"pp/wire"
)

const (
	sandboxesOnOneConn = 64
	parallelConns      = 32
)

func (e *env) loadChecks(r *harness.Runner) {
	r.Run("load/64_sandboxes_one_connection", e.manyOnOneConnection)
	r.Run("load/32_connections_full_lifecycle", e.manyConnections)
}

// manyOnOneConnection: 64 sandboxes on one client; CreateVM all at once, then StartVM all at
// once, then StopVM all at once.
func (e *env) manyOnOneConnection() error {
	h, err := newClient(e.socket, load)
	if err != nil {
		return err
	}
	defer h.Close()
	id := func(i int) string { return fmt.Sprintf("one-conn-%d", i) }
	steps := []struct {
		name string
		do   func(i int) error
	}{
		{"CreateVM", func(i int) error {
			path, err := h.CreateVM(sandboxRequest(id(i), "pod-"+id(i)))
			if err != nil {
				return err
			}
			return e.expectCreated(id(i), path)
		}},
		{"StartVM", func(i int) error { return h.StartVM(id(i), 0) }},
		{"StopVM", func(i int) error {
			if err := h.StopVM(id(i)); err != nil {
				return err
			}
			return e.expectGone(id(i))
		}},
	}
	for _, step := range steps {
		if err := allAtOnce(sandboxesOnOneConn, step.do); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	return nil
}

// manyConnections: 32 connections at once, each running one sandbox's whole life.
func (e *env) manyConnections() error {
	return allAtOnce(parallelConns, func(i int) error {
		h, err := newClient(e.socket, load)
		if err != nil {
			return err
		}
		defer h.Close()
		id := fmt.Sprintf("conn-%d", i)
		pod := "pod-" + id
		path, err := h.CreateVM(sandboxRequest(id, pod))
		if err != nil {
			return fmt.Errorf("CreateVM: %w", err)
		}
		if err := e.expectCreated(id, path); err != nil {
			return err
		}
		if err := h.StartVM(id, 0); err != nil {
			return fmt.Errorf("StartVM: %w", err)
		}
		vmid, err := h.GetInfo(&wire.GetInfoRequest{PodName: pod, PodNamespace: "default"}, 0)
		if err == nil && vmid == "" {
			err = fmt.Errorf("empty VMID")
		}
		if err != nil {
			return fmt.Errorf("GetInfo: %w", err)
		}
		if err := h.StopVM(id); err != nil {
			return fmt.Errorf("StopVM: %w", err)
		}
		return e.expectGone(id)
	})
}

// allAtOnce runs do(0..n-1) in n goroutines released together and reports how many failed.
func allAtOnce(n int, do func(i int) error) error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			errs[i] = do(i)
		}(i)
	}
	close(start)
	wg.Wait()
	failed, first := 0, -1
	for i, err := range errs {
		if err != nil {
			failed++
			if first < 0 {
				first = i
			}
		}
	}
	if failed == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d failed, first #%d: %w", failed, n, first, errs[first])
}
