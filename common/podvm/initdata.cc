#include "common/podvm/initdata.h"

#include <openssl/evp.h>
#include <toml++/toml.h>

#include <exception>

#include "common/podvm/encoding.h"

namespace pp::podvm {
namespace {

bool Fail(std::string& error, const std::string& what) {
  error = "initdata: " + what;
  return false;
}

bool Digest(const std::string& algorithm, std::string_view bytes, std::string& hex) {
  const EVP_MD* md = algorithm == "sha256"   ? EVP_sha256()
                     : algorithm == "sha384" ? EVP_sha384()
                     : algorithm == "sha512" ? EVP_sha512()
                                             : nullptr;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (md == nullptr || EVP_Digest(bytes.data(), bytes.size(), digest, &length, md, nullptr) != 1)
    return false;
  static constexpr char kHex[] = "0123456789abcdef";
  hex.clear();
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return true;
}

}  // namespace

bool ParseInitdataToml(std::string_view toml, Initdata& out, std::string& error) {
  out = Initdata{};
  if (toml.size() > kMaxInitdataBytes) {
    return Fail(error, "document of " + std::to_string(toml.size()) +
                           " bytes is more than the limit of " + std::to_string(kMaxInitdataBytes));
  }
  toml::table doc;
  try {
    doc = toml::parse(toml);
  } catch (const toml::parse_error& e) {
    // The description and position only; never the document's text (it may hold credentials).
    const auto& where = e.source().begin;
    return Fail(error, "not valid TOML at line " + std::to_string(where.line) + ", column " +
                           std::to_string(where.column) + ": " + std::string(e.description()));
  } catch (const std::exception& e) {
    return Fail(error, std::string("cannot parse TOML: ") + e.what());
  }
  const auto* version = doc.get_as<std::string>("version");
  if (version == nullptr) return Fail(error, "\"version\" is missing or not a string");
  if (version->get() != "0.1.0") return Fail(error, "version is not \"0.1.0\"");
  const auto* algorithm = doc.get_as<std::string>("algorithm");
  if (algorithm == nullptr) return Fail(error, "\"algorithm\" is missing or not a string");
  out.version = version->get();
  out.algorithm = algorithm->get();
  if (out.algorithm != "sha256" && out.algorithm != "sha384" && out.algorithm != "sha512") {
    return Fail(error, "algorithm must be sha256, sha384 or sha512");
  }
  if (const toml::node* data = doc.get("data"); data != nullptr) {
    const toml::table* table = data->as_table();
    if (table == nullptr) return Fail(error, "\"data\" must be a table");
    for (const auto& [key, value] : *table) {
      const auto* text = value.as_string();
      if (text == nullptr)
        return Fail(error, "data.\"" + Printable(key.str(), 64, /*mask_quotes=*/true) +
                               "\" must be a string");
      out.data.emplace(std::string(key.str()), text->get());
    }
  }
  out.toml = std::string(toml);
  if (!Digest(out.algorithm, toml, out.digest_hex)) return Fail(error, "cannot compute the digest");
  return true;
}

bool ParseInitdataFile(std::string_view encoded, Initdata& out, std::string& error) {
  std::string gz;
  std::string toml;
  std::string why;
  if (!Base64Decode(encoded, kMaxInitdataBytes * 2, gz, why))
    return Fail(error, "not base64(gzip(TOML)): " + why);
  if (!GzipDecompress(gz, kMaxInitdataBytes, toml, why))
    return Fail(error, "not base64(gzip(TOML)): " + why);
  return ParseInitdataToml(toml, out, error);
}

bool CheckToml(std::string_view text, std::string& error) {
  try {
    (void)toml::parse(text);
    return true;
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    error = "not valid TOML at line " + std::to_string(where.line) + ", column " +
            std::to_string(where.column) + ": " + std::string(e.description());
  } catch (const std::exception& e) {
    error = std::string("cannot parse TOML: ") + e.what();
  }
  return false;
}

std::string EncodeInitdata(std::string_view toml) { return Base64Encode(GzipCompress(toml)); }

}  // namespace pp::podvm
