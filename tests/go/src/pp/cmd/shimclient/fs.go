package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// env is the daemon's socket and pods dir.
type env struct {
	socket  string
	podsDir string
}

func (e *env) sandboxDir(id string) string { return filepath.Join(e.podsDir, id) }

// expectCreated checks the CreateVM answer and what it left on disk.
func (e *env) expectCreated(id, agentSocket string) error {
	if want := filepath.Join(e.sandboxDir(id), "agent.ttrpc"); agentSocket != want {
		return fmt.Errorf("agentSocketPath %q, want %q", agentSocket, want)
	}
	if _, err := os.Stat(filepath.Join(e.sandboxDir(id), "sandbox.json")); err != nil {
		return fmt.Errorf("after CreateVM: %w", err)
	}
	return nil
}

func (e *env) expectGone(id string) error {
	if _, err := os.Lstat(e.sandboxDir(id)); !os.IsNotExist(err) {
		return fmt.Errorf("%s still exists after StopVM (%v)", e.sandboxDir(id), err)
	}
	return nil
}

// snapshot lists the pods dir and its parent, to show a rejected request wrote nothing.
func (e *env) snapshot() string {
	return list(e.podsDir) + " | " + list(filepath.Dir(e.podsDir))
}

func list(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	names := make([]string, 0, len(entries))
	for _, entry := range entries {
		names = append(names, entry.Name())
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func (e *env) noLeftovers() error {
	if got := list(e.podsDir); got != "" {
		return fmt.Errorf("pods dir still holds %s", got)
	}
	return nil
}
