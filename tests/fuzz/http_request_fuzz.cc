// libFuzzer target: arbitrary bytes as the head of a request to the probe listener (any client on
// the node's network can connect to -probe-port). Invariants: nothing crashes or reads past the
// bound; a complete head has a token method and a path starting with '/' without '?', and its
// size is within the input and the bound; parsing just the head gives the same answer; a head
// that is not complete is incomplete only below the bound. Built by the "fuzz" preset (clang,
// ASan+UBSan) with adaptor/http_request.cc alone.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "adaptor/http_request.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using pp::adaptor::HttpRequestHead;
  using pp::adaptor::ParseHttpRequestHead;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (std::size_t max_head : {std::size_t{64}, std::size_t{8192}}) {
    const HttpRequestHead head = ParseHttpRequestHead(input, max_head);
    switch (head.status) {
      case HttpRequestHead::Status::kComplete: {
        Check(!head.method.empty() &&
              head.method.find_first_of(" \r\n/") == std::string_view::npos);
        Check(!head.path.empty() && head.path.front() == '/');
        Check(head.path.find_first_of("?# \r\n") == std::string_view::npos);
        Check(head.head_size > 0 && head.head_size <= input.size() && head.head_size <= max_head);
        const HttpRequestHead again =
            ParseHttpRequestHead(input.substr(0, head.head_size), max_head);
        Check(again.status == head.status && again.method == head.method &&
              again.path == head.path && again.head_size == head.head_size);
        break;
      }
      case HttpRequestHead::Status::kIncomplete:
        Check(input.size() < max_head && head.method.empty() && head.path.empty());
        break;
      case HttpRequestHead::Status::kTooLarge:
        Check(input.size() >= max_head);
        break;
      case HttpRequestHead::Status::kBad:
        Check(head.method.empty() && head.path.empty());
        break;
    }
  }
  return 0;
}
