// pp::model's API over the codec (model/codec.h): its Status becomes a pp::Error.
#include "model/format.h"

#include <utility>

#include "model/codec.h"

namespace pp::model {
namespace {

Result<Header> ToResult(codec::Status status, Header header) {
  if (status.ok()) return header;
  if (status.err != 0) return std::unexpected(ErrnoError(status.message, status.err));
  return std::unexpected(Error{static_cast<Code>(status.code), std::move(status.message)});
}

}  // namespace

Result<Header> Encrypt(int in_fd, int out_fd, std::span<const std::uint8_t, kKeyBytes> key,
                       const EncryptOptions& options) {
  Header header;
  auto status = codec::Encrypt(in_fd, out_fd, key, options, header);
  return ToResult(std::move(status), std::move(header));
}

Result<Header> ReadHeader(int in_fd) {
  Header header;
  auto status = codec::ReadHeader(in_fd, header);
  return ToResult(std::move(status), std::move(header));
}

Result<Header> Decrypt(int in_fd, int out_fd, std::span<const std::uint8_t, kKeyBytes> key,
                       Progress progress) {
  auto header = ReadHeader(in_fd);
  if (!header) return header;
  return DecryptBody(*header, in_fd, out_fd, key, std::move(progress));
}

Result<Header> DecryptBody(const Header& header, int in_fd, int out_fd,
                           std::span<const std::uint8_t, kKeyBytes> key, Progress progress) {
  Header result;
  auto status = codec::DecryptBody(header, in_fd, out_fd, key, progress, result);
  return ToResult(std::move(status), std::move(result));
}

}  // namespace pp::model
