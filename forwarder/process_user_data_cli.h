// process-user-data's command line: CAA's `process-user-data provision-files [-t 180]`, plus an
// explicit source so no cloud detection is needed:
//   -user-data-file <path> | -cidata <image or device> | -url <http://...> [-header "K: v"]...
//   [-base64] -output-dir <dir> (default /run/peerpod)  -t <seconds> (default 180)  -retry-delay
//   <seconds> (5)
// -t and -retry-delay apply to -cidata and -url, which may not be ready yet at boot; a
// -user-data-file is read once, and a missing one is an error at once.
// With no source, only an existing <output-dir>/initdata is processed (VMs where cloud-init wrote
// the files), as CAA does.
#pragma once

#include <string>
#include <vector>

#include "common/base/error.h"

namespace CLI {
class App;
}

namespace pp::forwarder {

struct ProcessUserDataOptions {
  std::string user_data_file;        // -user-data-file
  std::string cidata;                // -cidata
  std::string url;                   // -url
  std::vector<std::string> headers;  // -header, repeatable, "Name: value"
  bool base64 = false;  // -base64: the source holds base64 of the document (Azure IMDS)
  std::string output_dir = "/run/peerpod";
  int timeout_seconds = 180;       // -t, --user-data-fetch-timeout (-cidata and -url only)
  double retry_delay_seconds = 5;  // -retry-delay
  bool version = false;
};

// Declares the flags on `app` (and the `provision-files` subcommand CAA's units call). Parse with
// pp::NormalizeGoFlags first for Go's "-name value" syntax; "-t" stays a short flag.
void AddProcessUserDataFlags(CLI::App& app, ProcessUserDataOptions& options);

// What CLI11 cannot check: at most one source, a usable timeout, delay and headers.
Result<void> ValidateOptions(const ProcessUserDataOptions& options);

// Reads the user-data (retrying -cidata and -url), validates everything, writes the files. Logs
// each file written (name, mode, size; never contents). Returns 0 on success or when there is
// nothing to do, 1 when the user-data could not be read, was rejected, or could not be written.
int RunProcessUserData(const ProcessUserDataOptions& options);

// The whole program: flags (2 on a usage error), then RunProcessUserData.
int ProcessUserDataMain(int argc, const char* const* argv);

}  // namespace pp::forwarder
