package main

// Periodic reconciliation against a real libvirtd: a domain that carries this node's owner tag
// (as the libvirt provider writes it, providers/libvirt/domain_xml.cc) but that no sandbox record
// accounts for, made behind the adaptor's back while it runs, is deleted by the adaptor's next
// reconciliation pass once -reconcile-grace has passed, and not before.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"pp/agentchain"
)

const orphanName = "podvm-orphan-e2e00000"

// An owner-tagged domain that boots nothing: enough for the provider to list it as this node's.
const orphanXML = `<domain type='qemu'>
  <name>` + orphanName + `</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <metadata>
    <peerpod:instance xmlns:peerpod="https://confidentialcontainers.org/peerpods/libvirt/1">
      <peerpod:node>e2e-node</peerpod:node>
      <peerpod:sandbox>e2e00000000000orphan</peerpod:sandbox>
      <peerpod:pod namespace="default" name="orphan"/>
    </peerpod:instance>
  </metadata>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
</domain>
`

func (e *env) orphanReconciled(dir string) error {
	path := filepath.Join(dir, "orphan.xml")
	if err := os.WriteFile(path, []byte(orphanXML), 0o600); err != nil {
		return err
	}
	if _, err := agentchain.Virsh("define", path); err != nil {
		return err
	}
	defer func() { // on a failure below
		agentchain.Virsh("destroy", orphanName)
		agentchain.Virsh("undefine", orphanName)
	}()
	if _, err := agentchain.Virsh("start", orphanName); err != nil {
		return err
	}
	made := time.Now()
	for {
		doms, err := agentchain.Virsh("list", "--all", "--name")
		if err != nil {
			return err
		}
		if !strings.Contains(doms, orphanName) {
			break
		}
		if time.Since(made) > 60*time.Second {
			return fmt.Errorf("the orphan domain is still there 60 s later (interval %s, grace %s)",
				reconcileInterval, reconcileGrace)
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(made)
	grace, _ := time.ParseDuration(reconcileGrace)
	if took < grace {
		return fmt.Errorf("the orphan was deleted after %v, within the %v grace period", took, grace)
	}
	fmt.Printf("  (the orphan domain was deleted %.1f s after it appeared; interval %s, grace %s)\n",
		took.Seconds(), reconcileInterval, reconcileGrace)
	return e.expectClean(10 * time.Second)
}
