// Content encodings of cloud-config user-data and initdata: standard base64 and gzip.
//
// Standard library + zlib only (no pp::base), so the fuzz targets can build this with clang.
// Every decoder is bounded: it refuses to produce more than `max_bytes`, which is what stops a
// small gzip bomb from becoming a large file. Errors never quote the input (it may be a secret).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pp::podvm {

// RFC 4648 standard alphabet with '=' padding, no line breaks.
std::string Base64Encode(std::string_view bytes);

// Decodes standard base64. ASCII whitespace (space, tab, CR, LF) anywhere is skipped, as in
// cloud-init and Go's base64.NewDecoder over line-wrapped text. Padding is required when the last
// group is partial, and the unused bits of the last character must be zero (so every input has a
// single canonical meaning). On failure returns false, leaves `out` empty and a reason in `error`.
bool Base64Decode(std::string_view text, std::size_t max_bytes, std::string& out,
                  std::string& error);

// gzip (RFC 1952) with zlib's default level; deterministic (no file name, zero mtime).
std::string GzipCompress(std::string_view bytes);

// Decompresses one gzip member. Fails when the data is not gzip, is truncated, has trailing bytes,
// or would inflate to more than `max_bytes`; `out` is then empty.
bool GzipDecompress(std::string_view data, std::size_t max_bytes, std::string& out,
                    std::string& error);

// Decodes the UTF-8 sequence at text[i] (i < text.size()) into `cp`; returns its length in bytes,
// or 0 when it is malformed (overlong, surrogate, past U+10FFFF, truncated).
std::size_t NextUtf8(std::string_view text, std::size_t i, std::uint32_t& cp);

// Whether `text` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool IsValidUtf8(std::string_view text);

// A key or value from a document, for messages: at most `max` characters, anything outside
// printable ASCII (and '"' when `mask_quotes`) shown as '?', "..." when cut.
std::string Printable(std::string_view text, std::size_t max = 64, bool mask_quotes = false);

}  // namespace pp::podvm
