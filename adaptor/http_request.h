// The head of an HTTP/1.x request, as the probe listener (probe_server.h) needs it: the method and
// the path, nothing else. A reader that does no I/O and bounds what it looks at; fuzzed
// (tests/fuzz/http_request_fuzz.cc).
//
// Grammar (RFC 9112): request-line = method SP request-target SP HTTP-version CRLF, then header
// fields up to an empty line. Leading empty lines are skipped (RFC 9112 section 2.2), a bare LF
// ends a line as CRLF does (section 2.2). Header fields are checked for form (a token, a colon) but
// not kept: the probe paths need none. origin-form targets ("/readyz?x") and absolute-form targets
// ("http://host:8000/readyz") both give their path; the query is dropped.
// Standard library only (the fuzz build compiles this file alone).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pp::adaptor {

struct HttpRequestHead {
  enum class Status {
    kIncomplete,  // no end of the header block yet, and fewer than the allowed bytes seen
    kComplete,    // method and path set; head_size bytes make up the head
    kBad,         // not an HTTP/1.x request head (answer 400)
    kTooLarge,    // the head is longer than allowed (answer 431)
  };
  Status status = Status::kIncomplete;
  std::string method;
  std::string path;  // starts with '/', no query
  std::size_t head_size = 0;
};

// Parses the request head at the start of `bytes`, looking at no more than `max_head` bytes.
HttpRequestHead ParseHttpRequestHead(std::string_view bytes, std::size_t max_head);

}  // namespace pp::adaptor
