// ttrpc framing: the 10-byte frame header and a sans-I/O incremental frame reader.
//
// A frame is `u32 BE data length | u32 BE stream id | u8 type | u8 flags | data`. Data is at most
// kMaxDataLength (4 MiB) bytes. FrameReader does no I/O and never allocates more than one frame
// (plus one read chunk): an oversized frame is reported from its header alone and its data is
// skipped as it streams in, so a hostile peer cannot make it buffer more. This file deliberately
// depends on nothing but the standard library so the fuzz target can build it with any compiler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pp::ttrpc {

inline constexpr std::size_t kHeaderLength = 10;
inline constexpr std::uint32_t kMaxDataLength = 4u << 20;

enum class MessageType : std::uint8_t { kRequest = 1, kResponse = 2, kData = 3 };

struct FrameHeader {
  std::uint32_t length = 0;
  std::uint32_t stream_id = 0;
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
};

void EncodeHeader(const FrameHeader& header, std::uint8_t* out);
FrameHeader DecodeHeader(const std::uint8_t* in);

// A complete frame. `data` points into the reader's buffer and stays valid until the next call to
// Prepare() or Next(). When `oversized` is set, data is empty and the frame's bytes are being
// discarded; the header is reported so the receiver can answer on its stream.
struct Frame {
  FrameHeader header;
  std::string_view data;
  bool oversized = false;
};

class FrameReader {
 public:
  explicit FrameReader(std::uint32_t max_data_length = kMaxDataLength);

  // A region to read at most `chunk` new bytes into; pass the count actually read to Commit().
  std::span<std::uint8_t> Prepare(std::size_t chunk = 64 * 1024);
  void Commit(std::size_t n);

  // The next complete frame, or nullopt when more bytes are needed.
  std::optional<Frame> Next();

  // Bytes buffered but not yet returned as frames (a peer that closes mid-frame leaves some).
  std::size_t Buffered() const { return end_ - begin_; }

  // Whether part of a frame has arrived and its rest has not: bytes buffered that Next() cannot
  // return yet, or an oversized frame still being skipped.
  bool InFrame() const { return discard_ > 0 || end_ > begin_; }

 private:
  std::uint32_t max_data_length_;
  std::vector<std::uint8_t> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::uint64_t discard_ = 0;  // bytes of an oversized frame still to skip
};

// Appends a whole frame (header + data) to `out`.
void AppendFrame(std::string& out, std::uint32_t stream_id, MessageType type, std::uint8_t flags,
                 std::string_view data);

}  // namespace pp::ttrpc
