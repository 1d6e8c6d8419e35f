// DecryptToFile: plaintext appears at its path only once the whole file authenticated.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/base/handle.h"
#include "model/format.h"

namespace pp::model {
namespace {

// Writes into a fresh `path`.partial-XXXXXX (mkostemp: O_EXCL, mode 0600, so nothing another user
// placed there is written through and nobody else can read it meanwhile), renamed over `path` only
// on success. On failure it is truncated, which on tmpfs returns its pages at once (the kernel
// zeroes a page before it hands it out again), and unlinked. Overwriting with zeros first would add
// a full extra write and still not reach copies a disk file system may keep (journal, CoW, SSD
// remapping): plaintext belongs on tmpfs, which is what the loader uses.
Result<Header> ToFile(const Header* header, int in_fd, const std::string& path, mode_t mode,
                      std::span<const std::uint8_t, kKeyBytes> key, Progress progress) {
  std::string tmp_path = path + ".partial-XXXXXX";
  std::vector<char> tmpl(tmp_path.begin(), tmp_path.end());
  tmpl.push_back('\0');
  ScopedFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd) return std::unexpected(ErrnoError("create " + tmp_path, errno));
  tmp_path.assign(tmpl.data());

  auto discard = [&](Error error) -> Result<Header> {
    (void)::ftruncate(fd.get(), 0);
    ::unlink(tmp_path.c_str());
    return std::unexpected(std::move(error));
  };
  auto result = header != nullptr ? DecryptBody(*header, in_fd, fd.get(), key, std::move(progress))
                                  : Decrypt(in_fd, fd.get(), key, std::move(progress));
  if (!result) return discard(std::move(result.error()));
  if (::fchmod(fd.get(), mode) != 0) return discard(ErrnoError("chmod " + tmp_path, errno));
  if (::fsync(fd.get()) != 0) return discard(ErrnoError("fsync " + tmp_path, errno));
  if (::rename(tmp_path.c_str(), path.c_str()) != 0)
    return discard(ErrnoError("rename " + tmp_path + " to " + path, errno));
  return result;
}

}  // namespace

Result<Header> DecryptToFile(int in_fd, const std::string& path, mode_t mode,
                             std::span<const std::uint8_t, kKeyBytes> key, Progress progress) {
  return ToFile(nullptr, in_fd, path, mode, key, std::move(progress));
}

Result<Header> DecryptBodyToFile(const Header& header, int in_fd, const std::string& path,
                                 mode_t mode, std::span<const std::uint8_t, kKeyBytes> key,
                                 Progress progress) {
  return ToFile(&header, in_fd, path, mode, key, std::move(progress));
}

}  // namespace pp::model
