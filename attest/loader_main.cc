// peerpods-model-loader: decrypts an encrypted model (model/FORMAT.md) into memory-backed storage
// with a key a KBS releases only to this attested pod VM (attest/loader.h).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "attest/loader.h"
#include "common/base/log.h"

int main(int argc, char** argv) {
  pp::ConfigureLogging("info", "text");  // logs on stderr; stdout carries only the result line
  pp::attest::LoaderOptions o;
  std::string mode = "0440";
  int timeout = 300;
  CLI::App app{"Decrypt a confidential model inside an attested pod VM.\n"
               "Exit status: 0 done, 1 internal error, 2 usage or initdata, 3 attestation refused or key not\n"
               "released, 4 KBS/CDH/model URL unreachable, 5 model rejected (tampered, wrong key id or key), 6 output\n"
               "not in memory (tmpfs/ramfs)."};
  app.add_option("--initdata", o.initdata_path, "initdata file: base64(gzip(TOML))")
      ->envname("MODEL_LOADER_INITDATA")->capture_default_str();
  app.add_option("--model", o.model_path, "the encrypted model: a file, - (standard input) or an http(s) URL")
      ->envname("MODEL_LOADER_MODEL")->required();
  app.add_option("--model-ca-bundle", o.model_ca_bundle, "CA bundle (PEM) for an https model URL")
      ->envname("MODEL_LOADER_MODEL_CA_BUNDLE");
  app.add_option("--output", o.output_path, "where the plaintext goes, in a tmpfs/ramfs directory")
      ->envname("MODEL_LOADER_OUTPUT")->required();
  app.add_option("--mode", mode, "mode of the plaintext file (octal)")->envname("MODEL_LOADER_MODE")
      ->capture_default_str();
  app.add_flag("--allow-disk-output", o.allow_disk_output,
               "skip the tmpfs/ramfs check of the output directory (plaintext may reach a disk)");
  app.add_option("--cdh-url", o.cdh_url, "the confidential data hub's REST endpoint (key-source auto/cdh)")
      ->envname("MODEL_LOADER_CDH_URL")->capture_default_str();
  app.add_option("--timeout", timeout, "seconds allowed for getting the key")->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--tsm-root", o.evidence.tsm_root, "configfs-tsm root")->capture_default_str();
  app.add_flag("--allow-sample-tee", o.evidence.allow_sample,
               "without TDX/SNP, use Trustee's unsigned `sample` evidence (tests and demos only)")
      ->envname("MODEL_LOADER_ALLOW_SAMPLE_TEE");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "peerpods-model-loader: %s\n", e.what());
    return pp::attest::kExitUsage;
  }
  try {
    std::size_t used = 0;
    o.mode = static_cast<mode_t>(std::stoul(mode, &used, 8));
    if (used != mode.size() || o.mode > 0777) throw std::invalid_argument(mode);
  } catch (const std::exception&) {
    std::fprintf(stderr, "peerpods-model-loader: --mode must be octal permissions such as 0440\n");
    return pp::attest::kExitUsage;
  }
  o.timeout = std::chrono::seconds(timeout);
  return pp::attest::RunLoader(o);
}
