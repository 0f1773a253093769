// RFC 6455 framing and the upgrade handshake for the load generator and the sink.
#include "cli/bench_ws.h"

#include <openssl/evp.h>

#include <cstring>

namespace chatd::cli::bench {

namespace {

constexpr char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Splits a head into lines; calls fn(line) for each after the first; returns the first.
template <typename Fn>
std::string_view ForEachHeader(std::string_view head, Fn&& fn) {
  size_t eol = head.find("\r\n");
  std::string_view first = head.substr(0, eol);
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) fn(Trim(line.substr(0, colon)), Trim(line.substr(colon + 1)));
    pos = end + 2;
  }
  return first;
}

}  // namespace

void MaskBytes(char* data, size_t len, uint32_t mask_key, size_t phase) {
  unsigned char m[4];
  memcpy(m, &mask_key, 4);
  size_t i = 0;
  // Bring the phase to 0 first, then XOR eight bytes at a time.
  for (; i < len && ((phase + i) & 3) != 0; ++i) data[i] = static_cast<char>(data[i] ^ m[(phase + i) & 3]);
  uint64_t m8 = 0;
  memcpy(&m8, m, 4);
  memcpy(reinterpret_cast<char*>(&m8) + 4, m, 4);
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, data + i, 8);
    w ^= m8;
    memcpy(data + i, &w, 8);
  }
  for (; i < len; ++i) data[i] = static_cast<char>(data[i] ^ m[(phase + i) & 3]);
}

WsDecode DecodeFrame(char* data, size_t len, bool expect_masked, size_t max_payload, WsFrame* out, size_t* consumed) {
  if (len < 2) return WsDecode::kNeedMore;
  auto b0 = static_cast<unsigned char>(data[0]);
  auto b1 = static_cast<unsigned char>(data[1]);
  if (b0 & 0x70) return WsDecode::kError;  // RSV bits: no extensions are negotiated
  bool masked = b1 & 0x80;
  if (masked != expect_masked) return WsDecode::kError;
  uint64_t plen = b1 & 0x7f;
  size_t pos = 2;
  if (plen == 126) {
    if (len < 4) return WsDecode::kNeedMore;
    plen = (static_cast<uint64_t>(static_cast<unsigned char>(data[2])) << 8) | static_cast<unsigned char>(data[3]);
    pos = 4;
  } else if (plen == 127) {
    if (len < 10) return WsDecode::kNeedMore;
    plen = 0;
    for (int i = 0; i < 8; ++i) plen = (plen << 8) | static_cast<unsigned char>(data[2 + i]);
    pos = 10;
  }
  uint8_t opcode = b0 & 0x0f;
  bool fin = b0 & 0x80;
  if (opcode >= 0x8 && (plen > 125 || !fin)) return WsDecode::kError;  // control frames
  if (plen > max_payload) return WsDecode::kError;
  uint32_t mask_key = 0;
  if (masked) {
    if (len < pos + 4) return WsDecode::kNeedMore;
    memcpy(&mask_key, data + pos, 4);
    pos += 4;
  }
  if (len - pos < plen) return WsDecode::kNeedMore;
  if (masked) MaskBytes(data + pos, plen, mask_key);
  out->opcode = opcode;
  out->fin = fin;
  out->payload = std::string_view(data + pos, plen);
  *consumed = pos + plen;
  return WsDecode::kFrame;
}

void AppendServerHeader(std::string* out, uint8_t opcode, size_t n) {
  char h[10];
  size_t hl = 2;
  h[0] = static_cast<char>(0x80 | opcode);
  if (n < 126) {
    h[1] = static_cast<char>(n);
  } else if (n < 65536) {
    h[1] = 126;
    h[2] = static_cast<char>(n >> 8);
    h[3] = static_cast<char>(n & 0xff);
    hl = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; ++i) h[2 + i] = static_cast<char>((static_cast<uint64_t>(n) >> (8 * (7 - i))) & 0xff);
    hl = 10;
  }
  out->append(h, hl);
}

void AppendFrame(std::string* out, uint8_t opcode, std::string_view payload, uint32_t mask_key) {
  size_t start = out->size();
  AppendServerHeader(out, opcode, payload.size());
  if (mask_key == 0) {
    out->append(payload);
    return;
  }
  (*out)[start + 1] = static_cast<char>((*out)[start + 1] | 0x80);
  out->append(reinterpret_cast<const char*>(&mask_key), 4);
  size_t at = out->size();
  out->append(payload);
  MaskBytes(out->data() + at, payload.size(), mask_key);
}

std::string Base64(const unsigned char* data, size_t len) {
  static const char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((len + 2) / 3 * 4);
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = static_cast<uint32_t>(data[i]) << 16;
    if (i + 1 < len) v |= static_cast<uint32_t>(data[i + 1]) << 8;
    if (i + 2 < len) v |= data[i + 2];
    out.push_back(kTable[(v >> 18) & 63]);
    out.push_back(kTable[(v >> 12) & 63]);
    out.push_back(i + 1 < len ? kTable[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < len ? kTable[v & 63] : '=');
  }
  return out;
}

std::string NewWsKey(uint64_t seed) {
  unsigned char raw[16];
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int i = 0; i < 16; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    raw[i] = static_cast<unsigned char>(x >> 24);
  }
  return Base64(raw, sizeof raw);
}

std::string WsAccept(std::string_view key) {
  std::string text(key);
  text += kGuid;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  EVP_Digest(text.data(), text.size(), digest, &dlen, EVP_sha1(), nullptr);
  return Base64(digest, dlen);
}

std::string UpgradeRequest(std::string_view host, std::string_view path, std::string_view key) {
  std::string r;
  r.reserve(200);
  r.append("GET ").append(path).append(" HTTP/1.1\r\nHost: ").append(host);
  r.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ").append(key);
  r.append("\r\nSec-WebSocket-Version: 13\r\n\r\n");
  return r;
}

HttpHead ParseResponseHead(std::string_view data, size_t* head_len, int* status, std::string* accept) {
  size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) return data.size() > 16384 ? HttpHead::kError : HttpHead::kNeedMore;
  *head_len = end + 4;
  std::string_view first = ForEachHeader(data.substr(0, end + 2), [&](std::string_view k, std::string_view v) {
    if (IEquals(k, "Sec-WebSocket-Accept")) accept->assign(v);
  });
  // "HTTP/1.1 101 Switching Protocols"
  size_t sp = first.find(' ');
  if (first.substr(0, 5) != "HTTP/" || sp == std::string_view::npos || first.size() < sp + 4) return HttpHead::kError;
  int code = 0;
  for (size_t i = sp + 1; i < sp + 4; ++i) {
    if (first[i] < '0' || first[i] > '9') return HttpHead::kError;
    code = code * 10 + (first[i] - '0');
  }
  *status = code;
  return HttpHead::kComplete;
}

HttpHead ParseRequestHead(std::string_view data, size_t* head_len, std::string* path, std::string* key) {
  size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) return data.size() > 16384 ? HttpHead::kError : HttpHead::kNeedMore;
  *head_len = end + 4;
  std::string_view first = ForEachHeader(data.substr(0, end + 2), [&](std::string_view k, std::string_view v) {
    if (IEquals(k, "Sec-WebSocket-Key")) key->assign(v);
  });
  // "GET /ws HTTP/1.1"
  if (first.substr(0, 4) != "GET ") return HttpHead::kError;
  size_t sp = first.find(' ', 4);
  if (sp == std::string_view::npos) return HttpHead::kError;
  path->assign(first.substr(4, sp - 4));
  return HttpHead::kComplete;
}

}  // namespace chatd::cli::bench
