// cli/bench_ws.h — RFC 6455 framing for `chatctl bench`: the client side (masked frames out,
// unmasked frames in) and the server side used by the trivial sink (the reverse), plus the
// HTTP upgrade handshake. Pure functions over byte buffers: no sockets, no allocation on
// the hot path beyond appending to the caller's buffer. Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace chatd::cli::bench {

enum WsOpcode : uint8_t {
  kWsContinuation = 0x0,
  kWsText = 0x1,
  kWsBinary = 0x2,
  kWsClose = 0x8,
  kWsPing = 0x9,
  kWsPong = 0xA,
};

// One decoded frame. `payload` points into the decoder's input (unmasked in place when the
// frame was masked, so the input must be writable).
struct WsFrame {
  uint8_t opcode = 0;
  bool fin = false;
  std::string_view payload;
};

enum class WsDecode { kFrame, kNeedMore, kError };

// Decodes one frame at the start of [data, data+len). On kFrame, *consumed is the frame's
// length. `expect_masked`: a server reading client frames requires the mask bit, a client
// requires it clear. Frames larger than max_payload are an error.
WsDecode DecodeFrame(char* data, size_t len, bool expect_masked, size_t max_payload, WsFrame* out, size_t* consumed);

// Appends a frame. With a nonzero mask key (client frames) the payload is masked.
void AppendFrame(std::string* out, uint8_t opcode, std::string_view payload, uint32_t mask_key);
// Appends the header of a frame whose `len`-byte payload the caller appends itself
// (unmasked: server frames).
void AppendServerHeader(std::string* out, uint8_t opcode, size_t len);

// XORs data with the 4-byte mask, starting at mask byte `phase`.
void MaskBytes(char* data, size_t len, uint32_t mask_key, size_t phase = 0);

// A random 16-byte key, base64-encoded (Sec-WebSocket-Key).
std::string NewWsKey(uint64_t seed);
// base64(SHA-1(key + GUID)) (Sec-WebSocket-Accept).
std::string WsAccept(std::string_view key);
std::string Base64(const unsigned char* data, size_t len);

// The client's upgrade request for ws://host/path.
std::string UpgradeRequest(std::string_view host, std::string_view path, std::string_view key);

enum class HttpHead { kComplete, kNeedMore, kError };
// Reads an HTTP response head from the start of `data`. On kComplete, *head_len is its
// length including the blank line; *status the status code; *accept the
// Sec-WebSocket-Accept value (case-insensitive header name).
HttpHead ParseResponseHead(std::string_view data, size_t* head_len, int* status, std::string* accept);
// Reads an HTTP request head (the sink): the path and Sec-WebSocket-Key.
HttpHead ParseRequestHead(std::string_view data, size_t* head_len, std::string* path, std::string* key);

}  // namespace chatd::cli::bench
