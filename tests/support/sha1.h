// tests/support/sha1.h — SHA-1, only for checking Sec-WebSocket-Accept in the test client.
//
// SHA-1 is broken for signatures; RFC 6455 uses it as a handshake checksum, nothing more.
// libsodium has no SHA-1, and linking OpenSSL directly would add a dependency to the build,
// so the test support library carries this 60-line version (checked against FIPS 180-1
// vectors in tests/unit if present). Pure function, thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chatd::test {

std::array<uint8_t, 20> Sha1(std::string_view data);
// Standard base64 with padding (RFC 4648 §4), as the handshake uses.
std::string Base64(std::string_view bytes);
// base64url without padding (RFC 4648 §5), as PASETO uses.
std::string Base64UrlNoPad(std::string_view bytes);
// Decodes base64url, with or without padding; nullopt on any other character.
std::optional<std::string> Base64UrlDecode(std::string_view text);
std::string ToHex(std::string_view bytes);

}  // namespace chatd::test
