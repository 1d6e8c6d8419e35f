#include "common/ttrpc/frame.h"

#include <algorithm>
#include <cstring>

namespace pp::ttrpc {
namespace {

void PutU32(std::uint8_t* out, std::uint32_t v) {
  out[0] = static_cast<std::uint8_t>(v >> 24);
  out[1] = static_cast<std::uint8_t>(v >> 16);
  out[2] = static_cast<std::uint8_t>(v >> 8);
  out[3] = static_cast<std::uint8_t>(v);
}

std::uint32_t GetU32(const std::uint8_t* in) {
  return (std::uint32_t{in[0]} << 24) | (std::uint32_t{in[1]} << 16) |
         (std::uint32_t{in[2]} << 8) | std::uint32_t{in[3]};
}

}  // namespace

void EncodeHeader(const FrameHeader& header, std::uint8_t* out) {
  PutU32(out, header.length);
  PutU32(out + 4, header.stream_id);
  out[8] = header.type;
  out[9] = header.flags;
}

FrameHeader DecodeHeader(const std::uint8_t* in) {
  return FrameHeader{GetU32(in), GetU32(in + 4), in[8], in[9]};
}

FrameReader::FrameReader(std::uint32_t max_data_length) : max_data_length_(max_data_length) {}

std::span<std::uint8_t> FrameReader::Prepare(std::size_t chunk) {
  // Compact first so the buffer never grows past one frame plus one chunk.
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() < end_ + chunk) buffer_.resize(end_ + chunk);
  return {buffer_.data() + end_, chunk};
}

void FrameReader::Commit(std::size_t n) { end_ = std::min(end_ + n, buffer_.size()); }

std::optional<Frame> FrameReader::Next() {
  if (discard_ > 0) {
    const std::size_t skip =
        static_cast<std::size_t>(std::min<std::uint64_t>(discard_, end_ - begin_));
    begin_ += skip;
    discard_ -= skip;
    if (discard_ > 0) return std::nullopt;
  }
  if (end_ - begin_ < kHeaderLength) return std::nullopt;
  const FrameHeader header = DecodeHeader(buffer_.data() + begin_);
  if (header.length > max_data_length_) {
    begin_ += kHeaderLength;
    discard_ = header.length;
    return Frame{header, {}, true};
  }
  if (end_ - begin_ < kHeaderLength + header.length) return std::nullopt;
  const char* data = reinterpret_cast<const char*>(buffer_.data() + begin_ + kHeaderLength);
  begin_ += kHeaderLength + header.length;
  if (begin_ == end_) begin_ = end_ = 0;  // cheap reset keeps the next Prepare() memmove-free
  return Frame{header, {data, header.length}, false};
}

void AppendFrame(std::string& out, std::uint32_t stream_id, MessageType type, std::uint8_t flags,
                 std::string_view data) {
  std::uint8_t header[kHeaderLength];
  EncodeHeader({static_cast<std::uint32_t>(data.size()), stream_id,
                static_cast<std::uint8_t>(type), flags},
               header);
  out.append(reinterpret_cast<const char*>(header), kHeaderLength);
  out.append(data);
}

}  // namespace pp::ttrpc
