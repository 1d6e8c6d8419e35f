// peerpods-model: the model owner's tool for the encrypted-model format (model/FORMAT.md).
//   keygen OUT                                       32 random bytes, mode 0600, never overwrites
//   encrypt --key-file K --key-id ID [--chunk-size N] [--progress] IN OUT
//   inspect [--json] FILE                            the header; no key needed
//   decrypt --key-file K [--mode 0600] [--progress] IN OUT
// IN and OUT may be "-" (stdin, stdout). A key file holds 32 raw bytes or 64 hex digits (and a
// newline). decrypt to a file releases it only after the whole input authenticated; decrypt to
// stdout streams, and only exit status 0 says that what was streamed is authentic.
// Progress goes to stderr (a line every ~5% or 2 s) when stderr is a terminal or with --progress.
#pragma once

namespace pp::model {

// The whole program: 0 on success, 1 when the operation failed, 2 on a usage error.
int ModelCliMain(int argc, const char* const* argv);

}  // namespace pp::model
