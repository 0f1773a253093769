// crypto/paseto.h — PASETO v4.public tokens (https://github.com/paseto-standard/paseto-spec).
//
// Contract:
//   * Tokens are "v4.public." + base64url(m ‖ sig) [+ "." + base64url(f)], where sig is
//     Ed25519 over PAE("v4.public.", m, f, i): m the payload, f the optional footer
//     (sent in clear, e.g. {"kid":...}) and i the optional implicit assertion (never
//     sent; signer and verifier must agree on it). Checked against the official test
//     vectors 4-S-1..4-S-3.
//   * This module signs and verifies bytes only. Claims (exp, iss, aud, sub...) live in
//     the JSON payload and are the caller's to parse and check after PasetoVerify.
//   * All functions are stateless and safe to call from any thread. Tokens are untrusted
//     input: parsing never crashes, and every failure is Code::kUnauthorized with the
//     message "malformed token", "footer mismatch" or "bad signature".
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/keys.h"

namespace chatd::crypto {

// Signs payload (and footer, implicit assertion) into a v4.public token. The footer is
// omitted from the token when empty. Deterministic for a given key and inputs.
std::string PasetoSign(const KeyPair& key, std::string_view payload, std::string_view footer = {},
                       std::string_view implicit = {});

// Verifies a v4.public token and returns its payload (message bytes). When
// expected_footer is non-empty the token's footer must equal it (constant-time
// comparison, "footer mismatch" otherwise); when empty any footer is accepted (it is
// still covered by the signature). implicit must equal the signer's.
Result<std::string> PasetoVerify(const PublicKey& pk, std::string_view token,
                                 std::string_view expected_footer_or_empty_for_any = {},
                                 std::string_view implicit = {});

// Returns the decoded footer ("" if the token has none) WITHOUT verifying anything, so
// the caller can pick the verification key by its kid. Never trust it before
// PasetoVerify succeeds.
Result<std::string> PasetoFooter(std::string_view token);

}  // namespace chatd::crypto
