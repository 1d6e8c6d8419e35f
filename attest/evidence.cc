#include "attest/evidence.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cerrno>
#include <spdlog/spdlog.h>

#include "common/base/file.h"
#include "common/base/handle.h"
#include "common/podvm/encoding.h"

namespace pp::attest {
namespace {

// TD quotes are a few KiB; an SNP report is 1184 bytes. Anything much larger is not evidence.
constexpr std::size_t kMaxOutblob = 1u << 20;

class SampleEvidence final : public Evidence {
 public:
  std::string_view Tee() const override { return "sample"; }
  Result<nlohmann::json> Collect(std::string_view report_data) override {
    if (report_data.size() != kReportDataBytes) return Fail(Code::kInvalidArgument, "report data is not 64 bytes");
    return nlohmann::json{{"svn", "1"}, {"report_data", podvm::Base64Encode(report_data)}};
  }
};

// One report entry under <root>/report, removed on every path.
class TsmEntry {
 public:
  static Result<TsmEntry> Make(const EvidenceOptions& options) {
    const std::string& root = options.tsm_root;
    static std::atomic<unsigned> counter{0};
    std::string path = root + "/report/peerpods-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    if (::mkdir(path.c_str(), 0700) != 0) return std::unexpected(ErrnoError("configfs-tsm: mkdir " + path, errno));
    if (options.on_entry_created) options.on_entry_created(path);
    return TsmEntry(std::move(path));
  }
  TsmEntry(TsmEntry&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  TsmEntry(const TsmEntry&) = delete;
  TsmEntry& operator=(const TsmEntry&) = delete;
  ~TsmEntry() {
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

  Result<std::string> Read(const char* name) const { return ReadFile(path_ + "/" + name, kMaxOutblob); }
  Result<void> Write(const char* name, std::string_view data) const {
    const std::string file = path_ + "/" + name;
    ScopedFd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return std::unexpected(ErrnoError("configfs-tsm: open " + file, errno));
    return WriteAll(fd.get(), data, file);
  }

 private:
  explicit TsmEntry(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

unsigned long Number(const std::string& text) {
  const std::string t = Trim(text);
  unsigned long v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

class TsmEvidence final : public Evidence {
 public:
  TsmEvidence(EvidenceOptions options, std::string tee) : options_(std::move(options)), tee_(std::move(tee)) {}
  std::string_view Tee() const override { return tee_; }

  Result<nlohmann::json> Collect(std::string_view report_data) override {
    if (report_data.size() != kReportDataBytes) return Fail(Code::kInvalidArgument, "report data is not 64 bytes");
    auto entry = TsmEntry::Make(options_);
    if (!entry) return Fail(Code::kUnavailable, entry.error().message);
    // generation counts writes to the entry; reading it around outblob detects another writer
    // (Documentation/ABI/testing/configfs-tsm, "generation").
    auto before = entry->Read("generation");
    if (auto w = entry->Write("inblob", report_data); !w) return Fail(Code::kUnavailable, w.error().message);
    auto blob = entry->Read("outblob");
    if (!blob) return Fail(Code::kUnavailable, "configfs-tsm: reading outblob: ", blob.error().message);
    if (blob->empty()) return Fail(Code::kUnavailable, "configfs-tsm: empty outblob");
    auto provider = entry->Read("provider");
    if (provider && Trim(*provider) != Provider()) return Fail(Code::kUnavailable, "configfs-tsm: provider changed");
    if (before) {
      auto after = entry->Read("generation");
      if (!after || Number(*after) != Number(*before) + 1)
        return Fail(Code::kAborted, "configfs-tsm: another writer used the report entry");
    }
    if (tee_ == "tdx") return nlohmann::json{{"quote", podvm::Base64Encode(*blob)}, {"cc_eventlog", nullptr}};
    return nlohmann::json{{"attestation_report", podvm::Base64Encode(*blob)}, {"cert_chain", nullptr}};
  }

 private:
  std::string Provider() const { return tee_ == "tdx" ? "tdx_guest" : "sev_guest"; }
  EvidenceOptions options_;
  std::string tee_;
};

}  // namespace

std::unique_ptr<Evidence> MakeSampleEvidence() { return std::make_unique<SampleEvidence>(); }

Result<std::unique_ptr<Evidence>> DetectEvidence(const EvidenceOptions& options) {
  const auto sample = [&]() -> Result<std::unique_ptr<Evidence>> {
    spdlog::warn("attest: using the `sample` TEE: its evidence is unsigned and proves nothing; "
                 "a KBS must be configured to accept it (tests and demos only)");
    return MakeSampleEvidence();
  };
  if (options.force_sample) return sample();
  struct stat st{};
  const std::string report_dir = options.tsm_root + "/report";
  if (::stat(report_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    auto entry = TsmEntry::Make(options);
    if (entry) {
      auto provider = entry->Read("provider");
      if (provider) {
        const std::string p = Trim(*provider);
        if (p == "tdx_guest") return std::make_unique<TsmEvidence>(options, "tdx");
        if (p == "sev_guest") return std::make_unique<TsmEvidence>(options, "snp");
        spdlog::warn("attest: configfs-tsm provider '{}' is not supported", podvm::Printable(p));
      }
    }
  }
  // A TEE device without configfs-tsm is a TEE we cannot quote from: never fall back to sample there.
  for (const char* dev : {"/dev/tdx_guest", "/dev/sev-guest"}) {
    if (::access(dev, F_OK) == 0)
      return Fail(Code::kFailedPrecondition, "attest: ", dev, " exists but configfs-tsm does not (", report_dir,
                  "): mount configfs (Linux >= 6.7)");
  }
  if (options.allow_sample) return sample();
  return Fail(Code::kFailedPrecondition, "attest: no TEE found (no tdx_guest or sev_guest provider under ",
              report_dir, "); the sample TEE is for tests and needs --allow-sample-tee");
}

}  // namespace pp::attest
