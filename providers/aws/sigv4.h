// AWS Signature Version 4 (HMAC-SHA256), for the EC2 Query API and STS.
//
// The algorithm is AWS's "Create a signed AWS API request" (IAM User Guide, Signature Version 4
// signing process): a canonical request, a string to sign over its SHA-256, and an HMAC chain
// AWS4<secret> -> date -> region -> service -> aws4_request. Both forms are here: the
// Authorization header, and the presigned query string (X-Amz-* parameters). The intermediate
// strings are returned so that tests can compare them with the aws-c-auth signing suite
// (tests/providers/aws/sigv4-suite) step by step, not just the final signature.
//
// Pure functions of their inputs (the time is a parameter): no I/O, thread-safe. Secrets never
// leave a SignedParts except inside the signature and, for temporary credentials, the
// X-Amz-Security-Token header the caller must send anyway.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pp::providers::aws {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty for long-term keys
};

// What is signed. `path` and `query` are as they appear in the request line. The path is
// URI-encoded here as SigV4 asks of every service but S3 (so an already-encoded path is encoded
// twice, as botocore and aws-c-auth do); the query is decoded and re-encoded canonically.
struct SigningInput {
  std::string method = "POST";
  std::string path = "/";
  std::string query;      // without '?'
  HeaderList headers;     // must hold Host
  std::string_view body;  // the payload, hashed
};

struct SigningParams {
  std::string region;
  std::string service;
  std::chrono::system_clock::time_point time;
  bool normalize_path = true;  // every service but S3
  bool sign_body = false;      // add and sign x-amz-content-sha256 (S3 style)
  bool omit_session_token =
      false;  // send X-Amz-Security-Token unsigned (a few services want it so)
  std::chrono::seconds expires{3600};  // presigned form only
};

struct SignedParts {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  // lower-case hex
  // Header form: the headers to add, in this order (X-Amz-Date, X-Amz-Security-Token,
  // x-amz-content-sha256, Authorization). Query form: empty.
  HeaderList headers;
  // Query form: the request's query with the X-Amz-* parameters and X-Amz-Signature appended.
  std::string query;
};

// Signs with the Authorization header.
SignedParts SignHeaders(const SigningInput& input, const Credentials& creds,
                        const SigningParams& params);
// Signs as a presigned URL (X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders in the
// query; the payload hash is still part of the canonical request).
SignedParts SignQuery(const SigningInput& input, const Credentials& creds,
                      const SigningParams& params);

// SigV4's UriEncode: RFC 3986 unreserved bytes (A-Z a-z 0-9 - _ . ~) stay, every other byte is
// %XX in upper-case hex; '/' stays only when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash = false);
// Percent-decodes (%XX); '+' stays '+'. Malformed escapes are kept as they are.
std::string UriDecode(std::string_view s);

// "20150830T123600Z" for a time point (UTC).
std::string AmzDate(std::chrono::system_clock::time_point t);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace pp::providers::aws
