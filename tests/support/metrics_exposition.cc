// Prints the exposition of a Metrics with every metric set (for `promtool check metrics` in
// tests/adaptor/promtool_metrics_test.sh): test-only.
#include <iostream>

#include "adaptor/metrics.h"

int main() {
  using namespace pp::adaptor;
  Metrics m("0.1.0-test");
  m.RegisterProvider("libvirt");
  m.SetSandboxes(1, 2, 3);
  m.ObserveStartVM("libvirt", true, 42.5);
  m.ObserveStartVM("libvirt", false, 700);
  for (ProviderOp op :
       {ProviderOp::kCreate, ProviderOp::kDelete, ProviderOp::kList, ProviderOp::kVerify}) {
    m.ProviderCall("libvirt", op);
  }
  m.ProviderError("libvirt", ErrorClass(pp::Code::kUnavailable));
  m.SetProviderUp("libvirt", true);
  m.AgentConnectionOpened();
  m.AgentBytes(100, 200);
  m.ReconcileRun(true, 2, 1);
  m.ReconcileRun(false, 0, 0);
  m.SetLimit(10);
  m.LimitRejection();
  std::cout << m.Exposition();
  return 0;
}
