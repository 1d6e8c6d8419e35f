// Where the loader reads the encrypted model from: a file, standard input ("-"), or an http(s) URL
// streamed as it downloads (models are large: nothing is buffered beyond a socket's worth, and
// nothing of the ciphertext touches a disk either).
//
// A URL is fetched by libcurl on a thread of this object that writes into one end of a socketpair
// (send with MSG_NOSIGNAL: a reader that stops early is no SIGPIPE) while the loader reads the
// other end through fd(). TLS verification is always on (system store, or `ca_bundle`).
#pragma once

#include <memory>
#include <string>

#include "common/base/error.h"

namespace pp::attest {

class ModelSource {
 public:
  // NOT_FOUND/PERMISSION_DENIED for a file that cannot be opened; INVALID_ARGUMENT for a URL
  // that is not http(s). A URL's transfer starts at once.
  static Result<std::unique_ptr<ModelSource>> Open(const std::string& where, const std::string& ca_bundle = {});
  virtual ~ModelSource() = default;

  // The encrypted bytes, read sequentially.
  virtual int fd() const = 0;

  // Stops reading and reports how the transfer went: OK for a file; for a URL, UNAVAILABLE when
  // the server could not be reached or answered an HTTP error (with the status), or the transfer
  // broke off. Call once, after the reader is done (or gave up).
  virtual Result<void> Finish() = 0;

  static bool IsUrl(const std::string& where);
};

}  // namespace pp::attest
