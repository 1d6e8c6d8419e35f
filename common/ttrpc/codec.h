// The ttrpc envelope codec: Request and Response frames to and from bytes.
//
// Like frame.h this is standard library + protobuf only (no pp::Result), so the fuzz target can
// build it with clang. Encoders write header and message into one contiguous string, ready to send.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/ttrpc/frame.h"
#include "ttrpc.pb.h"

namespace pp::ttrpc {

// Parses a Request frame's data. False when the bytes are not a well-formed Request.
bool ParseRequest(std::string_view data, ::ttrpc::Request& out);

// Reads only the service (field 1) and method (field 2) of a Request, skipping the payload without
// copying it: enough for a relay to decide whether a call needs decoding. False on malformed bytes.
bool PeekRequestMethod(std::string_view data, std::string& service, std::string& method);

// Parses a Response frame's data. False when the bytes are not a well-formed Response.
bool ParseResponse(std::string_view data, ::ttrpc::Response& out);

// A Response frame. With code 0 the status field is left out, as the Go server does.
std::string EncodeResponseFrame(std::uint32_t stream_id, std::int32_t code,
                                std::string_view message, std::string_view payload);

// A Request frame with flags 0 (unary).
std::string EncodeRequestFrame(std::uint32_t stream_id, const ::ttrpc::Request& request);

}  // namespace pp::ttrpc
