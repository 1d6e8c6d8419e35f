#include "common/ttrpc/codec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

namespace pp::ttrpc {
namespace {

std::string EncodeFrame(std::uint32_t stream_id, MessageType type,
                        const google::protobuf::MessageLite& message) {
  const std::size_t size = message.ByteSizeLong();
  std::string out(kHeaderLength + size, '\0');
  auto* bytes = reinterpret_cast<std::uint8_t*>(out.data());
  EncodeHeader({static_cast<std::uint32_t>(size), stream_id, static_cast<std::uint8_t>(type), 0},
               bytes);
  message.SerializeWithCachedSizesToArray(bytes + kHeaderLength);
  return out;
}

}  // namespace

bool ParseRequest(std::string_view data, ::ttrpc::Request& out) {
  return out.ParseFromArray(data.data(), static_cast<int>(data.size()));
}

bool PeekRequestMethod(std::string_view data, std::string& service, std::string& method) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(data.data()),
                                            static_cast<int>(data.size()));
  service.clear();
  method.clear();
  while (const std::uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const bool delimited =
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if ((field == 1 || field == 2) && delimited) {
      if (!WireFormatLite::ReadString(&in, field == 1 ? &service : &method)) return false;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

bool ParseResponse(std::string_view data, ::ttrpc::Response& out) {
  return out.ParseFromArray(data.data(), static_cast<int>(data.size()));
}

std::string EncodeResponseFrame(std::uint32_t stream_id, std::int32_t code,
                                std::string_view message, std::string_view payload) {
  ::ttrpc::Response response;
  if (code != 0) {
    response.mutable_status()->set_code(code);
    response.mutable_status()->set_message(std::string(message));
  }
  if (!payload.empty()) response.set_payload(std::string(payload));
  return EncodeFrame(stream_id, MessageType::kResponse, response);
}

std::string EncodeRequestFrame(std::uint32_t stream_id, const ::ttrpc::Request& request) {
  return EncodeFrame(stream_id, MessageType::kRequest, request);
}

}  // namespace pp::ttrpc
