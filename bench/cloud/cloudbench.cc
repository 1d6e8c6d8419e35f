// cloudbench: many pods starting at once on a cloud, against the cloud's loopback fake with a
// realistic per-call latency and the cloud's throttling, in one run:
//   - ours: the provider as it ships, every CreateInstance waiting on one batched poller;
//   - naive: the same provider with batching off, each instance polling on its own loop (what a
//     client without a shared poller does: CAA's waiters, one per instance).
// For each it reports the API calls made, how many the cloud throttled, and the time until every
// instance runs with an address. Then the SigV4 signer's rate against botocore's (the same
// request signed by both), and the HTTP client's request rate with its reused connection against a
// new connection (TCP + TLS handshake) per request.
//
//   cloudbench [--pods 100] [--latency-ms 50] [--out report.md]   (the fakes come from the source tree)
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "providers/aws/aws_provider.h"
#include "providers/aws/sigv4.h"
#include "providers/azure/azure_provider.h"
#include "providers/gcp/gcp_provider.h"
#include "providers/http/client.h"
#include "tests/providers/fakes/fake_process.h"

namespace pp::bench {
namespace {

using providers::InstanceSpec;
using providers::OpContext;
using providers::Provider;
using Clock = std::chrono::steady_clock;

struct Options {
  int pods = 100;
  double latency_ms = 50;
  std::string out;
};

OpContext Budget(std::chrono::seconds s) { return OpContext{Clock::now() + s, {}}; }

// One cloud as the bench drives it.
struct Cloud {
  std::string name;
  std::string fake;
  std::vector<std::string> fake_args;  // besides latency and rate limit; "{work}" is a scratch dir
  std::string boot;                    // how the fake models a boot, for the report
  std::function<Result<std::unique_ptr<Provider>>(testing::FakeCloudProcess&, const std::string& work,
                                                  bool batched)>
      make;
  std::function<int(const nlohmann::json& calls)> polls;  // the calls that were polls
};

struct Outcome {
  int calls = 0;
  int polls = 0;
  int throttled = 0;
  int failed = 0;
  double seconds = 0;
  std::string first_error;
  std::string by_action;
};

Outcome StartMany(const Cloud& cloud, bool batched, const Options& o) {
  Outcome out;
  // EC2's token bucket for non-mutating actions (100 tokens, 20 a second; Amazon EC2 API
  // Reference, "Request throttling"), applied to every action of every fake alike.
  std::vector<std::string> args = {"--latency-ms", std::to_string(o.latency_ms), "--rate-limit", "20",
                                   "--rate-burst", "100"};
  std::string work = (std::filesystem::temp_directory_path() / "cloudbench-XXXXXX").string();
  if (::mkdtemp(work.data()) == nullptr) {
    out.failed = o.pods;
    out.first_error = "no scratch directory";
    return out;
  }
  for (std::string a : cloud.fake_args) {
    if (const auto at = a.find("{work}"); at != std::string::npos) a.replace(at, 6, work);
    args.push_back(a);
  }
  struct RemoveWork {
    std::string path;
    ~RemoveWork() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } remove_work{work};
  testing::FakeCloudProcess fake(cloud.fake, args);
  if (!fake.running()) {
    out.failed = o.pods;
    out.first_error = "the fake did not start";
    return out;
  }
  auto provider = cloud.make(fake, work, batched);
  if (!provider) {
    out.failed = o.pods;
    out.first_error = provider.error().ToString();
    return out;
  }
  const auto started = Clock::now();
  std::vector<std::future<Result<providers::Instance>>> creates;
  for (int i = 0; i < o.pods; ++i) {
    creates.push_back(std::async(std::launch::async, [&, i] {
      InstanceSpec spec;
      spec.name = "podvm-bench-" + std::to_string(i);
      spec.owner = {"bench-node", "bench-sandbox-" + std::to_string(i)};
      spec.pod_name = "bench-" + std::to_string(i);
      spec.pod_namespace = "default";
      spec.user_data = "#cloud-config\n";
      return (*provider)->CreateInstance(spec, Budget(std::chrono::seconds(600)));
    }));
  }
  std::vector<std::string> ids;
  for (auto& f : creates) {
    auto created = f.get();
    if (created) {
      ids.push_back(created->id);
    } else {
      if (out.failed++ == 0) out.first_error = created.error().ToString();
    }
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (auto stats = fake.Stats()) {
    const auto j = nlohmann::json::parse(*stats);
    for (const auto& [action, n] : j["calls"].items()) out.calls += n.get<int>();
    out.polls = cloud.polls(j["calls"]);
    out.throttled = j.value("throttled", 0);
    out.by_action = j["calls"].dump();
  }
  // Not timed: take everything down, all at once.
  std::vector<std::future<void>> deletes;
  for (const auto& id : ids) {
    deletes.push_back(std::async(std::launch::async, [&, id] {
      (void)(*provider)->DeleteInstance(id, Budget(std::chrono::seconds(300)));
    }));
  }
  for (auto& d : deletes) d.get();
  return out;
}

std::vector<Cloud> Clouds() {
  std::vector<Cloud> clouds;
  clouds.push_back(Cloud{
      "aws", "ec2_fake.py", {"--run-delay-ms", "20000"}, "20 s from pending to running",
      [](testing::FakeCloudProcess& fake, const std::string&, bool batched) {
        providers::aws::AwsConfig c;
        c.access_key_id = "AKIDFAKEEXAMPLE";
        c.secret_access_key = "fake/secret/key+for/tests";
        c.region = "us-east-1";
        c.image_id = "ami-0123456789abcdef0";
        c.subnet_id = "subnet-0123456789abcdef0";
        c.security_group_ids = {"sg-0123456789abcdef0"};
        c.ec2_endpoint = c.sts_endpoint = c.imds_endpoint = fake.url();
        c.ca_bundle = fake.ca_bundle();
        c.poll_interval = "2s";
        c.batch_poll = batched;
        return providers::aws::MakeAwsProvider(c);
      },
      [](const nlohmann::json& calls) { return calls.value("DescribeInstances", 0); }});
  clouds.push_back(Cloud{
      "azure", "arm_fake.py", {"--provision-polls", "1", "--provision-seconds", "20", "--page-size", "1000"},
      "20 s from the PUT to Succeeded",
      [](testing::FakeCloudProcess& fake, const std::string&, bool batched) -> Result<std::unique_ptr<Provider>> {
        providers::azure::AzureConfig c;
        c.client_id = "fake-client";
        c.client_secret = "fake-secret";
        c.tenant_id = "fake-tenant";
        c.subscription_id = "00000000-0000-0000-0000-000000000001";
        c.region = "eastus";
        c.resource_group = "peerpods-rg";
        c.subnet_id = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/net-rg/providers/"
                      "Microsoft.Network/virtualNetworks/vnet/subnets/pods";
        c.image_id = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/images-rg/providers/"
                     "Microsoft.Compute/galleries/g/images/podvm/versions/1.0.0";
        c.management_endpoint = c.authority_host = c.imds_endpoint = fake.url();
        c.management_audience = "https://management.fake.test";
        c.ca_bundle = fake.ca_bundle();
        c.poll_interval = std::chrono::seconds(2);
        c.batch_poll = batched;
        auto p = providers::azure::AzureProvider::Create(c);
        if (!p) return std::unexpected(p.error());
        return std::unique_ptr<Provider>(std::move(*p));
      },
      [](const nlohmann::json& calls) {
        return calls.value("LIST virtualMachines", 0) + calls.value("GET operations", 0) +
               calls.value("GET virtualMachines", 0);
      }});
  clouds.push_back(Cloud{
      "gcp", "gce_fake.py", {"--boot-seconds", "20", "--boot-polls", "1", "--op-polls", "1", "--write-key", "{work}/gcp-key.json"},
      "20 s from the insert to RUNNING",
      [](testing::FakeCloudProcess& fake, const std::string& work, bool batched) -> Result<std::unique_ptr<Provider>> {
        // The fake writes its service-account key once it listens.
        const std::string key = work + "/gcp-key.json";
        for (int i = 0; i < 500 && !std::filesystem::exists(key); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        providers::gcp::GcpConfig c;
        c.credentials = key;
        c.project_id = "test-project";
        c.zones = {"us-central1-a"};
        c.network = "default";
        c.image_name = "podvm-image";
        c.confidential_type = "SEV_SNP";
        c.machine_type = "n2d-standard-2";
        c.compute_endpoint = fake.url() + "/compute/v1";
        c.ca_bundle = fake.ca_bundle();
        c.poll_interval = std::chrono::seconds(2);
        c.batch_poll = batched;
        return providers::gcp::MakeGcpProvider(c);
      },
      [](const nlohmann::json& calls) {
        return calls.value("instances.list", 0) + calls.value("instances.get", 0) +
               calls.value("zoneOperations.get", 0) + calls.value("zoneOperations.wait", 0);
      }});
  return clouds;
}

// Our signer against botocore's on the same RunInstances request.
std::string SignerReport() {
  providers::aws::SigningInput in;
  in.method = "POST";
  in.path = "/";
  in.headers = {{"Host", "ec2.us-east-1.amazonaws.com"},
                {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  const std::string body = "Action=RunInstances&Version=2016-11-15&ImageId=ami-0123456789abcdef0&MinCount=1&MaxCount=1"
                           "&UserData=" + std::string(4096, 'A');
  in.body = body;
  providers::aws::Credentials creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  providers::aws::SigningParams params;
  params.region = "us-east-1";
  params.service = "ec2";
  params.time = std::chrono::system_clock::now();
  constexpr int kOurs = 50000;
  const auto t0 = Clock::now();
  std::size_t sink = 0;
  for (int i = 0; i < kOurs; ++i) sink += providers::aws::SignHeaders(in, creds, params).signature.size();
  const double ours = kOurs / std::chrono::duration<double>(Clock::now() - t0).count();

  // botocore (Debian's python3-botocore) signing the same request in a loop, timed in-process.
  const std::string script =
      "import time, botocore.auth, botocore.awsrequest, botocore.credentials\n"
      "c = botocore.credentials.Credentials('AKIDEXAMPLE', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY')\n"
      "body = 'Action=RunInstances&Version=2016-11-15&ImageId=ami-0123456789abcdef0&MinCount=1&MaxCount=1&UserData=' + 'A'*4096\n"
      "n = 5000\n"
      "t = time.monotonic()\n"
      "for _ in range(n):\n"
      "    r = botocore.awsrequest.AWSRequest('POST', 'https://ec2.us-east-1.amazonaws.com/', data=body,\n"
      "        headers={'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'})\n"
      "    botocore.auth.SigV4Auth(c, 'ec2', 'us-east-1').add_auth(r)\n"
      "print(n / (time.monotonic() - t))\n";
  std::string botocore = "?";
  if (FILE* p = ::popen(("/usr/bin/python3 -c \"" + script + "\"").c_str(), "r")) {
    char buf[64] = {};
    if (std::fgets(buf, sizeof buf, p) != nullptr) botocore = buf;
    ::pclose(p);
  }
  std::ostringstream os;
  const double boto = std::atof(botocore.c_str());
  os << "| SigV4 signer (4 KiB RunInstances body) | " << static_cast<long>(ours) << " signatures/s | botocore "
     << static_cast<long>(boto) << "/s | " << (boto > 0 ? ours / boto : 0) << "x |\n";
  (void)sink;
  return os.str();
}

// The client's rate on one reused connection against a new connection per request.
std::string ClientReport() {
  testing::FakeCloudProcess fake("echo_fake.py");
  if (!fake.running()) return "| HTTP client | the echo fake did not start | | |\n";
  providers::http::ClientOptions options;
  options.ca_bundle = fake.ca_bundle();
  providers::http::Request r;
  r.url = fake.url() + "/echo";
  constexpr int kCalls = 1000;
  providers::http::Client reused(options);
  auto t0 = Clock::now();
  int ok = 0;
  for (int i = 0; i < kCalls; ++i) ok += reused.Do(r, Budget(std::chrono::seconds(10))).has_value();
  const double reuse_rate = kCalls / std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  for (int i = 0; i < kCalls; ++i) {
    providers::http::Client fresh(options);
    ok += fresh.Do(r, Budget(std::chrono::seconds(10))).has_value();
  }
  const double fresh_rate = kCalls / std::chrono::duration<double>(Clock::now() - t0).count();
  std::ostringstream os;
  os << "| HTTP client, HTTPS to the loopback fake (" << ok << "/" << 2 * kCalls << " ok) | "
     << static_cast<long>(reuse_rate) << " requests/s on " << reused.connections_opened()
     << " connection | new connection per request " << static_cast<long>(fresh_rate) << "/s | "
     << reuse_rate / fresh_rate << "x |\n";
  return os.str();
}

int Run(const Options& o) {
  spdlog::set_level(spdlog::level::warn);
  std::ostringstream md;
  md << "## Cloud providers: " << o.pods << " pods started at once\n\n"
     << "Against each cloud's loopback fake, " << o.latency_ms
     << " ms added to every call, EC2's throttling bucket (100 tokens, 20/s per action) on every "
        "action; polls every 2 s. ours = one batched poller; naive = one poll loop per instance.\n\n"
     << "| cloud | boot in the fake | client | API calls | of them state reads | throttled | failed | all running after |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  std::ostringstream ratios;
  for (const Cloud& cloud : Clouds()) {
    Outcome results[2];
    for (int batched = 1; batched >= 0; --batched) {
      std::cerr << "cloudbench: " << cloud.name << " " << (batched ? "ours" : "naive") << ", " << o.pods
                << " pods...\n";
      Outcome r = StartMany(cloud, batched != 0, o);
      results[batched] = r;
      md << "| " << cloud.name << " | " << cloud.boot << " | " << (batched ? "ours" : "naive") << " | " << r.calls
         << " | " << r.polls << " | " << r.throttled << " | " << r.failed << " | " << r.seconds << " s |\n";
      std::cerr << "  calls: " << r.by_action << "\n";
      if (!r.first_error.empty()) std::cerr << "  first error: " << r.first_error << "\n";
    }
    ratios << "- " << cloud.name << ": naive/ours API calls " << (results[1].calls > 0 ? double(results[0].calls) / results[1].calls : 0)
           << "x (state reads " << (results[1].polls > 0 ? double(results[0].polls) / results[1].polls : 0) << "x), throttled "
           << results[0].throttled << " vs " << results[1].throttled << ", time " << results[0].seconds << " s vs "
           << results[1].seconds << " s\n";
  }
  md << "\n" << ratios.str() << "\n| what | ours | baseline | ratio |\n|---|---|---|---|\n" << SignerReport() << ClientReport();
  std::cout << md.str();
  if (!o.out.empty()) std::ofstream(o.out) << md.str();
  return 0;
}

}  // namespace
}  // namespace pp::bench

int main(int argc, char** argv) {
  pp::bench::Options o;
  CLI::App app("cloudbench: many pods at once on each cloud's fake, ours against a poll loop per instance");
  app.add_option("--pods", o.pods, "pods started at once")->capture_default_str();
  app.add_option("--latency-ms", o.latency_ms, "added to every API call")->capture_default_str();
  app.add_option("--out", o.out, "also write the report here");
  CLI11_PARSE(app, argc, argv);
  return pp::bench::Run(o);
}
