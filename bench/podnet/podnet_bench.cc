// podnetbench: what the pod network's VXLAN tunnel costs, against the plain CNI veth, in one run
// and in network namespaces only (no VM), so the figures are about our data path.
//   - veth: a process in the node netns <-> a process in a CNI-style pod netns over its veth;
//   - tunnel: the same node process <-> a process in the "VM"'s pod netns at the pod's IP, over
//     the CNI veth, tc ingress redirect, VXLAN and an underlay veth, both tunnel ends built by
//     netlink::SetUpNodeTunnel and netlink::SetUpPodTunnel (bench/podnet/topology.h).
// Each round measures both paths, metric by metric, the order alternating between rounds: bulk TCP
// node -> pod and pod -> node, and 1-byte request/response on one connection. Ratios are taken
// per round and quoted as median and range. Then the same on a 9000-byte underlay, to show the
// tunnel's MTU follows the underlay.
//
//   podnetbench [--rounds 5] [--seconds 3] [--pings 20000] [--jumbo-rounds 1] [--congestion cubic]
//               [--latency-cpu 0] [--out report.md] [--json results.json] [--describe]
//               [--tweak 'shell command']                                       (as root)
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench/podnet/tcp_probe.h"
#include "bench/podnet/topology.h"

namespace pp::bench {
namespace {

struct Options {
  int rounds = 5;
  double seconds = 3;
  int pings = 20000;
  int jumbo_rounds = 1;
  std::string congestion = "cubic";
  int latency_cpu = 0;
  std::string out, json;
  std::vector<std::string> tweaks;  // shell commands run on each topology once built
  bool describe = false;
};

// One path's figures in one round.
struct Sample {
  double to_pod_gbps = 0, from_pod_gbps = 0;
  double to_pod_cpu = 0, from_pod_cpu = 0;  // CPU ms per GB
  Latency latency;
};

struct Round {
  Sample veth, tunnel;
  bool tunnel_first = false;
};

struct Phase {
  std::string name;
  TopologyOptions topology;
  uint32_t veth_mtu = 0, tunnel_mtu = 0, node_tunnel_mtu = 0;
  std::vector<Round> rounds;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

template <typename F>
std::vector<double> Each(const std::vector<Round>& rounds, F f) {
  std::vector<double> out;
  for (const Round& r : rounds) out.push_back(f(r));
  return out;
}

std::string Fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

// "0.93x (range 0.91-0.95x)"
std::string MedianRange(const std::vector<double>& v, int digits, const std::string& unit) {
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return Fixed(Median(v), digits) + unit + " (range " + Fixed(*lo, digits) + "-" +
         Fixed(*hi, digits) + unit + ")";
}

// One metric on one path; the node's peer for the pod -> node direction is the CNI veth's node
// end, the pod's gateway.
Result<void> Measure(const Topology& t, bool tunnel, int metric, const Options& o, Sample& s) {
  const std::string pod = tunnel ? t.vmpod() : t.basepod();
  const std::string pod_ip = tunnel ? kPodIp : kBasePodIp;
  const std::string gateway = tunnel ? kPodGateway : kBaseGateway;
  if (metric == 0) {
    auto b = BulkTransfer(t.node(), pod, pod_ip, o.seconds, o.congestion);
    if (!b) return std::unexpected(b.error());
    s.to_pod_gbps = b->gbps;
    s.to_pod_cpu = b->cpu_ms_per_gb;
  } else if (metric == 1) {
    auto b = BulkTransfer(pod, t.node(), gateway, o.seconds, o.congestion);
    if (!b) return std::unexpected(b.error());
    s.from_pod_gbps = b->gbps;
    s.from_pod_cpu = b->cpu_ms_per_gb;
  } else {
    auto l = PingPong(t.node(), pod, pod_ip, o.pings, o.congestion, o.latency_cpu);
    if (!l) return std::unexpected(l.error());
    s.latency = *l;
  }
  return {};
}

Result<void> RunPhase(Phase& phase, int rounds, const Options& o) {
  std::cerr << "podnetbench: " << phase.name << ": building the topology (CNI veth MTU "
            << phase.topology.cni_mtu << ", underlay MTU " << phase.topology.underlay_mtu << ")\n";
  auto t = Topology::Build(phase.topology);
  if (!t) return std::unexpected(t.error());
  phase.veth_mtu = (*t)->veth_mtu();
  phase.tunnel_mtu = (*t)->tunnel_mtu();
  phase.node_tunnel_mtu = (*t)->node_tunnel_mtu();
  for (std::string tweak : o.tweaks) {
    for (const char* ns : {"node", "basepod", "tunpod", "vm", "vmpod"}) {
      const std::string key = std::string("{") + ns + "}";
      for (size_t at; (at = tweak.find(key)) != std::string::npos;)
        tweak.replace(at, key.size(), Topology::Name(ns));
    }
    std::cerr << "podnetbench: tweak: " << tweak << "\n";
    if (Sh(tweak) != 0) return Fail(Code::kInvalidArgument, "tweak failed: ", tweak);
  }
  if (o.describe) std::cerr << (*t)->Describe();
  // Warm-up: ARP, the first connections, page faults in both paths.
  for (bool tunnel : {false, true}) {
    Sample ignored;
    Options warm = o;
    warm.seconds = 0.5;
    warm.pings = 1000;
    for (int metric = 0; metric < 3; ++metric)
      if (auto r = Measure(**t, tunnel, metric, warm, ignored); !r) return r;
  }
  for (int i = 0; i < rounds; ++i) {
    Round round;
    round.tunnel_first = i % 2 == 1;
    for (int metric = 0; metric < 3; ++metric) {
      for (int k = 0; k < 2; ++k) {
        const bool tunnel = (k == 0) == round.tunnel_first;
        if (auto r = Measure(**t, tunnel, metric, o, tunnel ? round.tunnel : round.veth); !r)
          return r;
      }
    }
    std::cerr << "  round " << i + 1 << ": veth " << Fixed(round.veth.to_pod_gbps, 2) << "/"
              << Fixed(round.veth.from_pod_gbps, 2) << " Gbit/s p50 "
              << Fixed(round.veth.latency.p50_us, 1) << " us; tunnel "
              << Fixed(round.tunnel.to_pod_gbps, 2) << "/" << Fixed(round.tunnel.from_pod_gbps, 2)
              << " Gbit/s p50 " << Fixed(round.tunnel.latency.p50_us, 1) << " us\n";
    phase.rounds.push_back(round);
  }
  if (o.describe) std::cerr << "podnetbench: after the rounds:\n" << (*t)->Describe();
  return {};  // ~Topology tears both ends down with our code and deletes the namespaces
}

void TableRows(std::ostream& md, const Phase& p) {
  for (bool tunnel : {false, true}) {
    auto med = [&](double Sample::*field) {
      return Median(
          Each(p.rounds, [&](const Round& r) { return (tunnel ? r.tunnel : r.veth).*field; }));
    };
    auto lat = [&](double Latency::*field) {
      return Median(Each(
          p.rounds, [&](const Round& r) { return (tunnel ? r.tunnel : r.veth).latency.*field; }));
    };
    md << "| "
       << (tunnel ? "tunnel: CNI veth + tc redirect + VXLAN + underlay veth"
                  : "veth: CNI veth only")
       << " | " << p.topology.underlay_mtu << " | "
       << (tunnel ? std::to_string(p.tunnel_mtu) + " (node end " +
                        std::to_string(p.node_tunnel_mtu) + ")"
                  : std::to_string(p.veth_mtu))
       << " | " << Fixed(med(&Sample::to_pod_gbps), 2) << " | "
       << Fixed(med(&Sample::from_pod_gbps), 2) << " | " << Fixed(med(&Sample::to_pod_cpu), 0)
       << " / " << Fixed(med(&Sample::from_pod_cpu), 0) << " | " << Fixed(lat(&Latency::p50_us), 1)
       << " | " << Fixed(lat(&Latency::p99_us), 1) << " |\n";
  }
}

void Ratios(std::ostream& md, const Phase& p) {
  const auto to =
      Each(p.rounds, [](const Round& r) { return r.tunnel.to_pod_gbps / r.veth.to_pod_gbps; });
  const auto from =
      Each(p.rounds, [](const Round& r) { return r.tunnel.from_pod_gbps / r.veth.from_pod_gbps; });
  const auto added = Each(
      p.rounds, [](const Round& r) { return r.tunnel.latency.p50_us - r.veth.latency.p50_us; });
  const auto cpu_to =
      Each(p.rounds, [](const Round& r) { return r.tunnel.to_pod_cpu / r.veth.to_pod_cpu; });
  const auto cpu_from =
      Each(p.rounds, [](const Round& r) { return r.tunnel.from_pod_cpu / r.veth.from_pod_cpu; });
  md << p.name
     << ", per round (tunnel/veth throughput node -> pod, pod -> node; added p50; tunnel/veth CPU "
        "per GB "
     << "node -> pod, pod -> node):\n\n";
  for (size_t i = 0; i < p.rounds.size(); ++i)
    md << "- round " << i + 1 << (p.rounds[i].tunnel_first ? " (tunnel first)" : " (veth first)")
       << ": " << Fixed(to[i], 3) << "x, " << Fixed(from[i], 3) << "x; "
       << (added[i] >= 0 ? "+" : "") << Fixed(added[i], 1) << " µs; CPU " << Fixed(cpu_to[i], 2)
       << "x, " << Fixed(cpu_from[i], 2) << "x\n";
  md << "\nTunnel/veth throughput node -> pod **" << MedianRange(to, 3, "x") << "**, pod -> node **"
     << MedianRange(from, 3, "x") << "**; goal at least 0.90x: "
     << (Median(to) >= 0.9 && Median(from) >= 0.9 ? "met" : "NOT met")
     << " at the median. Added p50 **" << MedianRange(added, 1, " µs")
     << "**; goal under 20 µs: " << (Median(added) < 20 ? "met" : "NOT met")
     << " at the median. CPU per GB moved, tunnel/veth: node -> pod " << MedianRange(cpu_to, 2, "x")
     << ", pod -> node " << MedianRange(cpu_from, 2, "x") << ".\n\n";
}

nlohmann::json ToJson(const Options& o, const std::vector<Phase>& phases) {
  nlohmann::json j = {{"seconds", o.seconds},
                      {"pings", o.pings},
                      {"congestion", o.congestion},
                      {"latency_cpu", o.latency_cpu},
                      {"phases", nlohmann::json::array()}};
  auto sample = [](const Sample& s) {
    return nlohmann::json{
        {"to_pod_gbps", s.to_pod_gbps},         {"from_pod_gbps", s.from_pod_gbps},
        {"to_pod_cpu_ms_per_gb", s.to_pod_cpu}, {"from_pod_cpu_ms_per_gb", s.from_pod_cpu},
        {"p50_us", s.latency.p50_us},           {"p99_us", s.latency.p99_us}};
  };
  for (const Phase& p : phases) {
    nlohmann::json rounds = nlohmann::json::array();
    for (const Round& r : p.rounds)
      rounds.push_back({{"tunnel_first", r.tunnel_first},
                        {"veth", sample(r.veth)},
                        {"tunnel", sample(r.tunnel)}});
    j["phases"].push_back({{"name", p.name},
                           {"underlay_mtu", p.topology.underlay_mtu},
                           {"veth_mtu", p.veth_mtu},
                           {"tunnel_mtu", p.tunnel_mtu},
                           {"node_tunnel_mtu", p.node_tunnel_mtu},
                           {"rounds", rounds}});
  }
  return j;
}

int Run(const Options& o) {
  if (::geteuid() != 0) {
    std::cerr << "podnetbench: must run as root: it makes network namespaces, veth pairs, VXLAN "
                 "devices and "
                 "tc filters (CAP_SYS_ADMIN, CAP_NET_ADMIN); try `sudo "
              << "podnetbench`\n";
    return 2;
  }
  if (Sh("command -v ip >/dev/null 2>&1") != 0) {
    std::cerr << "podnetbench: needs iproute2's `ip` to make the test topology\n";
    return 2;
  }
  auto cleanup = SignalCleanup::Start();  // before any thread starts: they inherit the signal mask
  if (!cleanup) {
    std::cerr << "podnetbench: " << cleanup.error().ToString() << "\n";
    return 1;
  }
  RemoveStaleNamespaces();
  std::vector<Phase> phases = {{"underlay MTU 1500", {1500, 1500}, 0, 0, 0, {}},
                               {"underlay MTU 9000", {9000, 9000}, 0, 0, 0, {}}};
  for (Phase& p : phases) {
    const int rounds = &p == &phases[0] ? o.rounds : o.jumbo_rounds;
    if (rounds <= 0) continue;
    if (auto r = RunPhase(p, rounds, o); !r) {
      std::cerr << "podnetbench: " << p.name << ": " << r.error().ToString() << "\n";
      return 1;
    }
  }
  std::erase_if(phases, [](const Phase& p) { return p.rounds.empty(); });

  std::ostringstream md;
  md << "## Pod network: VXLAN tunnel against the plain CNI veth\n\n"
     << "Network namespaces only (no VM): a process in the node netns and one in the pod netns. "
        "TCP ("
     << (o.congestion.empty() ? "the default congestion control" : o.congestion) << ") bulk for "
     << o.seconds << " s per direction (256 KiB writes), 1-byte ping-pong x " << o.pings
     << " on one connection (TCP_NODELAY"
     << (o.latency_cpu >= 0 ? ", both threads on CPU " + std::to_string(o.latency_cpu)
                            : std::string())
     << "). CPU: this process's user + system time (the in-context "
        "softirq work of every hop included) per GB moved. Table cells: median over the rounds.\n\n"
     << "| path | underlay MTU | path MTU | node -> pod Gbit/s | pod -> node Gbit/s | CPU ms per "
        "GB (to / from pod) | p50 µs | p99 µs |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (const Phase& p : phases) TableRows(md, p);
  md << "\n";
  for (const Phase& p : phases) Ratios(md, p);
  std::cout << md.str();
  if (!o.out.empty()) std::ofstream(o.out) << md.str();
  if (!o.json.empty()) std::ofstream(o.json) << ToJson(o, phases).dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace pp::bench

int main(int argc, char** argv) {
  pp::bench::Options o;
  CLI::App app("podnetbench: the pod network's VXLAN tunnel against the plain CNI veth (as root)");
  app.add_option("--rounds", o.rounds, "rounds on a 1500-byte underlay")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--seconds", o.seconds, "bulk transfer time per direction and path")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--pings", o.pings, "1-byte round trips per path and round")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--jumbo-rounds", o.jumbo_rounds, "rounds on a 9000-byte underlay (0: none)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--congestion", o.congestion,
                 "TCP congestion control of the bench's sockets (empty: the namespace's default); "
                 "cubic, Linux's default, does not pace, so the figures are the path's own")
      ->capture_default_str();
  app.add_option(
         "--latency-cpu", o.latency_cpu,
         "run both ping-pong threads on this CPU (-1: let the scheduler place them; an idle "
         "CPU's wake-up then adds tens of µs to some rounds on a VM)")
      ->capture_default_str();
  app.add_option("--out", o.out, "also write the markdown report here");
  app.add_option("--json", o.json, "also write every round's figures here as JSON");
  app.add_flag("--describe", o.describe,
               "print the tunnel devices, tc filters, counters and offloads to stderr");
  app.add_option(
      "--tweak", o.tweaks,
      "a shell command run once each topology is built, for experiments; {node}, {basepod}, "
      "{tunpod}, {vm}, {vmpod} become the namespaces' names (e.g. 'ip netns exec {vm} "
      "ethtool -K ul0 gro on')");
  CLI11_PARSE(app, argc, argv);
  return pp::bench::Run(o);
}
