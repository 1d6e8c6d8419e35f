// libFuzzer target: arbitrary bytes from a peer through the frame reader and the envelope decoders,
// fed in chunks whose sizes come from the input too. Built by the "fuzz" preset (clang, ASan+UBSan).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "common/ttrpc/codec.h"
#include "common/ttrpc/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // A small frame limit lets the fuzzer reach the oversize path without 4 MiB inputs.
  const std::uint32_t limit = (data[0] & 1) ? 64 : pp::ttrpc::kMaxDataLength;
  const std::size_t chunk = 1 + data[0] % 97;
  pp::ttrpc::FrameReader reader(limit);
  for (std::size_t offset = 1; offset < size;) {
    const std::size_t n = std::min(chunk, size - offset);
    auto region = reader.Prepare(n);
    std::memcpy(region.data(), data + offset, n);
    reader.Commit(n);
    offset += n;
    while (auto frame = reader.Next()) {
      if (frame->oversized) {
        if (frame->header.length <= limit || !frame->data.empty()) std::abort();
        continue;
      }
      if (frame->data.size() != frame->header.length || frame->data.size() > limit) std::abort();
      ::ttrpc::Request request;
      if (pp::ttrpc::ParseRequest(frame->data, request)) {
        // What we decode we must be able to encode again.
        const std::string again = pp::ttrpc::EncodeRequestFrame(frame->header.stream_id, request);
        if (again.size() < pp::ttrpc::kHeaderLength) std::abort();
      }
      ::ttrpc::Response response;
      (void)pp::ttrpc::ParseResponse(frame->data, response);
    }
    // Never more than one frame (bounded by the limit) plus one chunk in memory.
    if (reader.Buffered() > limit + pp::ttrpc::kHeaderLength + chunk) std::abort();
  }
  return 0;
}
