// Small TCP load tools for the pod network benchmark: each side's socket is created inside its
// network namespace (and stays bound to it, man 7 network_namespaces), the two sides run on two
// threads of this process with blocking sockets. IPv4 only: the figures are about the data path.
// `congestion` names the sockets' TCP congestion control (TCP_CONGESTION, man 7 tcp; empty: the
// namespace's default): pacing (BBR's) costs a timer per packet and can cap the rate below what the
// path carries, which would hide the path's own cost.
#pragma once

#include <string>

#include "common/base/error.h"

namespace pp::bench {

struct Bulk {
  double gbps = 0;  // payload the receiver saw, 10^9 bits a second, first byte to EOF
  // This process's CPU time (user + system, both threads) per GB (10^9 bytes) moved. The kernel's
  // softirq work for a veth or VXLAN hop mostly runs in the sending thread's context and is then
  // charged to it (no CONFIG_IRQ_TIME_ACCOUNTING); what ksoftirqd does is not counted. Less
  // sensitive than the rate to other load on a shared machine.
  double cpu_ms_per_gb = 0;
};

// Bulk throughput: a listener on `receiver_ip` (port 0) in `receiver_netns`, a sender in
// `sender_netns` that writes 256 KiB chunks for `seconds`, then closes.
Result<Bulk> BulkTransfer(const std::string& sender_netns, const std::string& receiver_netns,
                          const std::string& receiver_ip, double seconds,
                          const std::string& congestion);

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
};

// Request/response: one connection (TCP_NODELAY on both ends) from `client_netns` to an echo
// server on `server_ip` in `server_netns`; the client sends 1 byte and waits for it back, `count`
// times after a warm-up of count/10, and returns the percentiles of the round trips. With `cpu` >=
// 0 both threads run on that CPU, so every hop's softirq work runs inline and no round trip waits
// for an idle CPU to wake (on a VM that wake-up, an IPI through the hypervisor, costs tens of µs
// and where the scheduler puts the threads, not the path, would decide the p50).
Result<Latency> PingPong(const std::string& client_netns, const std::string& server_netns,
                         const std::string& server_ip, int count, const std::string& congestion,
                         int cpu);

}  // namespace pp::bench
