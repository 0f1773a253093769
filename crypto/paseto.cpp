#include "crypto/paseto.h"

#include <array>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "crypto/bytes.h"

namespace chatd::crypto {
namespace {

constexpr std::string_view kHeader = "v4.public.";
constexpr size_t kSigLen = 64;

// LE64 of the spec: little-endian with the most significant bit cleared.
void AppendLe64(std::string* out, uint64_t n) {
  n &= ~(uint64_t{1} << 63);
  for (int i = 0; i < 8; ++i) {
    out->push_back(static_cast<char>(n & 0xff));
    n >>= 8;
  }
}

// Pre-Authentication Encoding: LE64(count) ‖ for each piece: LE64(len) ‖ piece.
std::string Pae(std::initializer_list<std::string_view> pieces) {
  size_t total = 8;
  for (auto p : pieces) total += 8 + p.size();
  std::string out;
  out.reserve(total);
  AppendLe64(&out, pieces.size());
  for (auto p : pieces) {
    AppendLe64(&out, p.size());
    out.append(p);
  }
  return out;
}

Status Malformed() { return Unauthorized("malformed token"); }

// The parts of a token, decoded but not verified.
struct ParsedToken {
  std::string message;  // m
  std::string sig;      // 64 bytes
  std::string footer;   // f, "" when absent
};

Result<ParsedToken> Parse(std::string_view token) {
  if (token.substr(0, kHeader.size()) != kHeader) return Malformed();
  std::string_view rest = token.substr(kHeader.size());
  std::string_view body = rest;
  std::string_view footer_b64;
  bool has_footer = false;
  if (auto dot = rest.find('.'); dot != std::string_view::npos) {
    body = rest.substr(0, dot);
    footer_b64 = rest.substr(dot + 1);
    has_footer = true;
    // A footer is never empty in a well-formed token (an empty one is omitted), and
    // base64url has no '.', so a second dot is malformed too (Base64UrlDecode rejects it).
    if (footer_b64.empty()) return Malformed();
  }
  auto raw = Base64UrlDecode(body);
  if (!raw.ok() || raw->size() < kSigLen) return Malformed();
  ParsedToken parsed;
  std::string_view all = AsText(*raw);
  parsed.message.assign(all.substr(0, all.size() - kSigLen));
  parsed.sig.assign(all.substr(all.size() - kSigLen));
  if (has_footer) {
    auto footer = Base64UrlDecode(footer_b64);
    if (!footer.ok()) return Malformed();
    parsed.footer.assign(AsText(*footer));
  }
  return parsed;
}

}  // namespace

std::string PasetoSign(const KeyPair& key, std::string_view payload, std::string_view footer,
                       std::string_view implicit) {
  std::string m2 = Pae({kHeader, payload, footer, implicit});
  std::array<uint8_t, 64> sig = key.Sign(AsBytes(m2));
  std::string signed_part(payload);
  signed_part.append(AsText(sig));
  std::string token(kHeader);
  token += Base64UrlEncode(AsBytes(signed_part));
  if (!footer.empty()) {
    token += '.';
    token += Base64UrlEncode(AsBytes(footer));
  }
  return token;
}

Result<std::string> PasetoVerify(const PublicKey& pk, std::string_view token,
                                 std::string_view expected_footer_or_empty_for_any,
                                 std::string_view implicit) {
  auto parsed = Parse(token);
  if (!parsed.ok()) return parsed.status();
  if (!expected_footer_or_empty_for_any.empty() &&
      !ConstantTimeEqual(parsed->footer, expected_footer_or_empty_for_any)) {
    return Unauthorized("footer mismatch");
  }
  std::string m2 = Pae({kHeader, parsed->message, parsed->footer, implicit});
  if (!VerifySignature(pk, AsBytes(m2), AsBytes(parsed->sig))) {
    return Unauthorized("bad signature");
  }
  return std::move(parsed->message);
}

Result<std::string> PasetoFooter(std::string_view token) {
  auto parsed = Parse(token);
  if (!parsed.ok()) return parsed.status();
  return std::move(parsed->footer);
}

}  // namespace chatd::crypto
