// tests/support/ws_frame_header.h — the length fields of an RFC 6455 frame header, shared by
// the test WebSocket clients (ws_client, fed_peer), which read frames byte by byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace chatd::test {

// The header's size given its second byte: 2, or 4 / 10 with an extended payload length.
inline size_t WsHeaderSize(uint8_t b1) {
  uint8_t len = b1 & 0x7f;
  return len == 126 ? 4 : len == 127 ? 10 : 2;
}

// The payload length of the frame at the start of buf, which holds its whole header.
inline uint64_t WsPayloadLength(const std::string& buf) {
  uint64_t len = static_cast<uint8_t>(buf[1]) & 0x7f;
  if (len == 126) return (uint64_t(uint8_t(buf[2])) << 8) | uint8_t(buf[3]);
  if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | uint8_t(buf[2 + i]);
  }
  return len;
}

}  // namespace chatd::test
