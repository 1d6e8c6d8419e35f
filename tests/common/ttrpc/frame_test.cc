#include "common/ttrpc/frame.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/ttrpc/codec.h"

namespace pp::ttrpc {
namespace {

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

void Feed(FrameReader& reader, std::string_view bytes) {
  auto region = reader.Prepare(bytes.size());
  std::memcpy(region.data(), bytes.data(), bytes.size());
  reader.Commit(bytes.size());
}

// The verified example of reference/kata-ttrpc.md 1.1: CreateVM{id:"a"} on stream 1.
TEST(FrameTest, EncodesTheReferenceCreateVMRequest) {
  ::ttrpc::Request request;
  request.set_service("hypervisor.Hypervisor");
  request.set_method("CreateVM");
  request.set_payload(std::string("\x0a\x01\x61", 3));
  EXPECT_EQ(Hex(EncodeRequestFrame(1, request)),
            "0000002600000001010" "0" "0a1568797065727669736f722e48797065727669736f72"
            "1208437265617465564d1a030a0161");
}

TEST(FrameTest, SuccessResponseHasNoStatusField) {
  EXPECT_EQ(Hex(EncodeResponseFrame(1, 0, {}, "\x0a\x02/s")), "00000006000000010200" "12040a022f73");
}

TEST(FrameTest, ErrorResponseCarriesCodeAndMessage) {
  const std::string frame = EncodeResponseFrame(3, 12, "method X", {});
  ::ttrpc::Response response;
  ASSERT_TRUE(ParseResponse(std::string_view(frame).substr(kHeaderLength), response));
  EXPECT_EQ(response.status().code(), 12);
  EXPECT_EQ(response.status().message(), "method X");
  EXPECT_EQ(DecodeHeader(reinterpret_cast<const std::uint8_t*>(frame.data())).stream_id, 3u);
}

TEST(FrameReaderTest, ReassemblesFramesSplitAcrossReads) {
  std::string wire;
  AppendFrame(wire, 1, MessageType::kRequest, 0, "hello");
  AppendFrame(wire, 3, MessageType::kRequest, 0, "");
  AppendFrame(wire, 5, MessageType::kRequest, 0, std::string(100000, 'x'));
  FrameReader reader;
  std::vector<std::pair<std::uint32_t, std::size_t>> seen;
  for (std::size_t i = 0; i < wire.size(); i += 7) {
    Feed(reader, std::string_view(wire).substr(i, 7));
    while (auto frame = reader.Next()) seen.emplace_back(frame->header.stream_id, frame->data.size());
  }
  EXPECT_EQ(seen, (std::vector<std::pair<std::uint32_t, std::size_t>>{{1, 5}, {3, 0}, {5, 100000}}));
  EXPECT_EQ(reader.Buffered(), 0u);
}

TEST(FrameReaderTest, ReportsOversizedFrameAndSkipsItsData) {
  std::string wire;
  std::uint8_t header[kHeaderLength];
  EncodeHeader({kMaxDataLength + 1, 7, 1, 0}, header);
  wire.append(reinterpret_cast<char*>(header), kHeaderLength);
  wire.append(kMaxDataLength + 1, 'z');
  AppendFrame(wire, 9, MessageType::kRequest, 0, "next");
  FrameReader reader;
  std::vector<Frame> frames;
  std::vector<std::string> data;
  for (std::size_t i = 0; i < wire.size(); i += 65536) {
    Feed(reader, std::string_view(wire).substr(i, 65536));
    while (auto frame = reader.Next()) {
      frames.push_back(*frame);
      data.emplace_back(frame->data);
    }
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_TRUE(frames[0].oversized);
  EXPECT_EQ(frames[0].header.stream_id, 7u);
  EXPECT_EQ(frames[0].header.length, kMaxDataLength + 1);
  EXPECT_FALSE(frames[1].oversized);
  EXPECT_EQ(data[1], "next");
}

TEST(FrameReaderTest, AcceptsExactlyTheMaximum) {
  std::string wire;
  AppendFrame(wire, 1, MessageType::kRequest, 0, std::string(kMaxDataLength, 'a'));
  FrameReader reader;
  Feed(reader, wire);
  auto frame = reader.Next();
  ASSERT_TRUE(frame);
  EXPECT_FALSE(frame->oversized);
  EXPECT_EQ(frame->data.size(), kMaxDataLength);
}

}  // namespace
}  // namespace pp::ttrpc
