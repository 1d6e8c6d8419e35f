#include "providers/aws/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>

namespace pp::providers::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string Hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Trims and collapses whitespace runs (including obs-folded line breaks) to one space: the
// canonical header value (SigV4: "Trimall").
std::string TrimAll(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (IsSpace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// RFC 3986 section 5.2.4 dot-segment removal, plus empty segments ("//") dropped, keeping a
// trailing slash: what aws-c-auth does when should_normalize_uri_path is set.
std::string NormalizePath(std::string_view path) {
  std::vector<std::string_view> segments;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(start, end - start);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    start = end + 1;
  }
  std::string out = "/";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i) out += '/';
    out += segments[i];
  }
  const bool trailing = !path.empty() && path.back() == '/';
  if (trailing && !segments.empty()) out += '/';
  return out;
}

struct Canonical {
  std::string request;
  std::string signed_headers;
};

// Canonical query string from decoded pairs: each name and value encoded, sorted by name then
// value.
std::string CanonicalQuery(std::vector<std::pair<std::string, std::string>> pairs) {
  for (auto& [k, v] : pairs) {
    k = UriEncode(k);
    v = UriEncode(v);
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [k, v] : pairs) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view item = query.substr(start, end - start);
    if (!item.empty()) {
      const std::size_t eq = item.find('=');
      if (eq == std::string_view::npos) {
        pairs.emplace_back(UriDecode(item), "");
      } else {
        pairs.emplace_back(UriDecode(item.substr(0, eq)), UriDecode(item.substr(eq + 1)));
      }
    }
    start = end + 1;
  }
  return pairs;
}

Canonical BuildCanonical(const SigningInput& input, const HeaderList& headers,
                         const std::string& query, const SigningParams& params,
                         const std::string& payload_hash) {
  // Headers: lower-case names, values trimmed, duplicates joined with ',' in the order given,
  // sorted by name.
  std::vector<std::pair<std::string, std::string>> merged;
  for (const auto& [name, value] : headers) {
    std::string lname = Lower(name);
    std::string v = TrimAll(value);
    auto it =
        std::find_if(merged.begin(), merged.end(), [&](const auto& p) { return p.first == lname; });
    if (it == merged.end()) {
      merged.emplace_back(std::move(lname), std::move(v));
    } else {
      it->second += ',';
      it->second += v;
    }
  }
  std::sort(merged.begin(), merged.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  Canonical c;
  std::string canonical_headers;
  for (const auto& [name, value] : merged) {
    canonical_headers += name + ':' + value + '\n';
    if (!c.signed_headers.empty()) c.signed_headers += ';';
    c.signed_headers += name;
  }
  // The path is encoded once as a whole here: the request line holds it raw. For every service
  // but S3 it is normalized first (aws-c-auth: should_normalize_uri_path).
  const std::string path =
      params.normalize_path ? NormalizePath(input.path) : std::string(input.path);
  c.request = input.method + '\n' + UriEncode(path.empty() ? "/" : path, true) + '\n' + query +
              '\n' + canonical_headers + '\n' + c.signed_headers + '\n' + payload_hash;
  return c;
}

std::string Scope(const std::string& date, const SigningParams& params) {
  return date + '/' + params.region + '/' + params.service + "/aws4_request";
}

std::string Signature(const Credentials& creds, const std::string& date,
                      const SigningParams& params, const std::string& string_to_sign) {
  const std::string k_date = Hmac("AWS4" + creds.secret_access_key, date);
  const std::string k_region = Hmac(k_date, params.region);
  const std::string k_service = Hmac(k_region, params.service);
  const std::string k_signing = Hmac(k_service, "aws4_request");
  const std::string sig = Hmac(k_signing, string_to_sign);
  return Hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
  }
  return out;
}

std::string UriDecode(std::string_view s) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string AmzDate(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

SignedParts SignHeaders(const SigningInput& input, const Credentials& creds,
                        const SigningParams& params) {
  const std::string amz_date = AmzDate(params.time);
  const std::string date = amz_date.substr(0, 8);
  const std::string payload_hash = Sha256Hex(input.body);

  SignedParts out;
  out.headers.emplace_back("X-Amz-Date", amz_date);
  if (!creds.session_token.empty())
    out.headers.emplace_back("X-Amz-Security-Token", creds.session_token);
  if (params.sign_body) out.headers.emplace_back("x-amz-content-sha256", payload_hash);

  HeaderList to_sign = input.headers;
  for (const auto& h : out.headers) {
    if (params.omit_session_token && h.first == "X-Amz-Security-Token") continue;
    to_sign.push_back(h);
  }
  const Canonical c =
      BuildCanonical(input, to_sign, CanonicalQuery(ParseQuery(input.query)), params, payload_hash);
  out.canonical_request = c.request;
  const std::string scope = Scope(date, params);
  out.string_to_sign =
      std::string(kAlgorithm) + '\n' + amz_date + '\n' + scope + '\n' + Sha256Hex(c.request);
  out.signature = Signature(creds, date, params, out.string_to_sign);
  out.headers.emplace_back("Authorization", std::string(kAlgorithm) +
                                                " Credential=" + creds.access_key_id + '/' + scope +
                                                ", SignedHeaders=" + c.signed_headers +
                                                ", Signature=" + out.signature);
  return out;
}

SignedParts SignQuery(const SigningInput& input, const Credentials& creds,
                      const SigningParams& params) {
  const std::string amz_date = AmzDate(params.time);
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = Scope(date, params);

  // Signed headers are the request's own; compute their list first, it is a query parameter.
  const Canonical names = BuildCanonical(input, input.headers, "", params, "");
  std::vector<std::pair<std::string, std::string>> added = {
      {"X-Amz-Algorithm", std::string(kAlgorithm)},
      {"X-Amz-Credential", creds.access_key_id + '/' + scope},
      {"X-Amz-Date", amz_date},
      {"X-Amz-SignedHeaders", names.signed_headers},
      {"X-Amz-Expires", std::to_string(params.expires.count())},
  };
  const bool token_signed = !creds.session_token.empty() && !params.omit_session_token;
  if (token_signed) added.emplace_back("X-Amz-Security-Token", creds.session_token);

  auto pairs = ParseQuery(input.query);
  pairs.insert(pairs.end(), added.begin(), added.end());
  const Canonical c =
      BuildCanonical(input, input.headers, CanonicalQuery(pairs), params, Sha256Hex(input.body));

  SignedParts out;
  out.canonical_request = c.request;
  out.string_to_sign =
      std::string(kAlgorithm) + '\n' + amz_date + '\n' + scope + '\n' + Sha256Hex(c.request);
  out.signature = Signature(creds, date, params, out.string_to_sign);

  out.query = input.query;
  const auto append = [&](const std::string& k, const std::string& v) {
    if (!out.query.empty()) out.query += '&';
    out.query += k + '=' + UriEncode(v);
  };
  for (const auto& [k, v] : added) append(k, v);
  if (!creds.session_token.empty() && !token_signed)
    append("X-Amz-Security-Token", creds.session_token);
  append("X-Amz-Signature", out.signature);
  return out;
}

}  // namespace pp::providers::aws
