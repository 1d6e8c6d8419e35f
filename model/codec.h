// The encrypted-model codec: what model/format.h does, with a plain Status in place of pp::Result
// so that it builds with the standard library and libcrypto alone (the fuzz targets' clang-14 has
// no std::expected). Use model/format.h; this is for the fuzz target and format.cc.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "model/header.h"

namespace pp::model::codec {

// code: pp::Code's numbering (gRPC), 0 = OK. err: the errno of a failed read or write (then
// `message` says what was being done), else 0.
struct Status {
  int code = 0;
  std::string message;
  int err = 0;
  bool ok() const { return code == 0; }
};

inline constexpr int kInvalidArgument = 3;
inline constexpr int kResourceExhausted = 8;
inline constexpr int kAborted = 10;
inline constexpr int kUnimplemented = 12;
inline constexpr int kInternal = 13;
inline constexpr int kDataLoss = 15;
inline constexpr int kUnauthenticated = 16;

// As pp::model::Encrypt, ReadHeader and DecryptBody; `header` receives the result on success.
Status Encrypt(int in_fd, int out_fd, std::span<const std::uint8_t, kKeyBytes> key,
               const EncryptOptions& options, Header& header);
Status ReadHeader(int in_fd, Header& header);
Status DecryptBody(const Header& header, int in_fd, int out_fd,
                   std::span<const std::uint8_t, kKeyBytes> key, const Progress& progress,
                   Header& result);

}  // namespace pp::model::codec
