// relay/wsframe.h — server-to-client WebSocket frames, built once and shared.
//
// Server frames are unmasked, so one encoded frame can be written to any number of
// sessions. Frame is immutable after creation and shared between threads by shared_ptr.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace chatd {

using Frame = std::shared_ptr<const std::string>;

// A final text frame (opcode 0x1) carrying `payload`.
inline Frame MakeTextFrame(std::string_view payload) {
  auto f = std::make_shared<std::string>();
  size_t n = payload.size();
  f->reserve(n + 10);
  f->push_back(static_cast<char>(0x81));
  if (n < 126) {
    f->push_back(static_cast<char>(n));
  } else if (n < 65536) {
    f->push_back(static_cast<char>(126));
    f->push_back(static_cast<char>((n >> 8) & 0xff));
    f->push_back(static_cast<char>(n & 0xff));
  } else {
    f->push_back(static_cast<char>(127));
    for (int i = 7; i >= 0; --i) f->push_back(static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xff));
  }
  f->append(payload);
  return f;
}

}  // namespace chatd
