// pp::Error and pp::Result: the one error type of the project.
//
// Codes use gRPC numbering because every error eventually crosses a ttrpc boundary as a
// google.rpc.Status. Messages are for people: they say what failed and, where possible, how to fix
// it ("libvirt: LIBVIRT_URI is empty"). Secrets never go into a message.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace pp {

enum class Code : int32_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "INVALID_ARGUMENT" etc.; "CODE(<n>)" for numbers outside the table.
std::string CodeName(Code code);

struct [[nodiscard]] Error {
  Code code = Code::kUnknown;
  std::string message;

  // "<CODE_NAME>: <message>"
  std::string ToString() const;
  friend bool operator==(const Error&, const Error&) = default;
};

template <typename T>
using Result = std::expected<T, Error>;

// Shorthand for returning an error: `return pp::Fail(Code::kNotFound, "sandbox ", id, " unknown");`
template <typename... Parts>
std::unexpected<Error> Fail(Code code, const Parts&... parts) {
  std::string message;
  (message.append(std::string_view(parts)), ...);
  return std::unexpected(Error{code, std::move(message)});
}

// Turns an errno value into an Error whose message is "<what>: <strerror>". ENOENT becomes
// NOT_FOUND, EEXIST ALREADY_EXISTS, EACCES/EPERM PERMISSION_DENIED, ENOSPC RESOURCE_EXHAUSTED,
// anything else INTERNAL.
Error ErrnoError(std::string_view what, int err);

}  // namespace pp
