// Small file-system helpers with pp::Result errors.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "common/base/error.h"

namespace pp {

// Writes `content` to `path` so that a reader (or a crash) sees the old file or the new one, never
// a mix: a temporary file in the same directory, fsync, rename over `path`, fsync the directory.
Result<void> WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode);

// Writes all of `data` to `fd`, retrying short writes and EINTR; `what` names the file in errors.
Result<void> WriteAll(int fd, std::string_view data, const std::string& what);

// Reads a whole file; fails with RESOURCE_EXHAUSTED when it is larger than `max_bytes`.
Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes);

}  // namespace pp
