// JSON Canonicalization Scheme (RFC 8785) for the KBS runtime-data binding.
//
// Trustee's attesters put HASH(JCS(runtime-data)) into the TEE report data (trustee
// kbs/docs/kbs_attestation_protocol.md, "runtime-data"); the verifier recomputes it from the JSON
// it received, so our bytes must equal every other implementation's bytes: object members sorted by
// their UTF-16 code units (RFC 8785 section 3.2.3), strings escaped as RFC 8785 section 3.2.2.2 says,
// no insignificant whitespace, numbers in ECMAScript form (section 3.2.2.3).
//
// Numbers: integers of magnitude < 2^53 and finite doubles are written as ECMAScript
// Number.prototype.toString would (shortest round-trip digits); runtime-data itself holds strings only.
//
// Standard library + nlohmann-json only (no pp::base, no std::expected), so the fuzz target can
// build it with clang.
#pragma once

#include <nlohmann/json.hpp>
#include <string>


namespace pp::attest {

// The canonical form of `value` into `out`. False with a reason in `error` (and `out` empty) for
// strings that are not UTF-8, integers outside the IEEE 754 double's exact range, or non-finite
// numbers.
bool Canonicalize(const nlohmann::json& value, std::string& out, std::string& error);

}  // namespace pp::attest
