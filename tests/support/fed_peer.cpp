#include "tests/support/fed_peer.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstring>

#include "base/time.h"
#include "crypto/bytes.h"
#include "tests/support/sha1.h"
#include "tests/support/ws_frame_header.h"

namespace chatd::test {
namespace {

constexpr char kWsGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kMaxMessage = 16u << 20;

int Remaining(int64_t deadline) {
  int64_t left = deadline - MonoMs();
  return left < 0 ? 0 : static_cast<int>(left);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string SignedText(const std::string& challenge, const std::string& signer, const std::string& other) {
  return "chatd-federation-v1\n" + challenge + "\n" + signer + "\n" + other;
}

}  // namespace

uint64_t SnowflakeAt(int64_t unix_ms, uint32_t counter, uint32_t node) {
  constexpr int64_t kEpochMs = 1704067200000;
  uint64_t ms = static_cast<uint64_t>(unix_ms - kEpochMs);
  return (ms << 22) | (static_cast<uint64_t>(counter & 0xfff) << 10) | (node & 0x3ff);
}

FedPeer::~FedPeer() {
  if (fd_ >= 0) ::close(fd_);
}

Status FedPeer::SendAll(std::string_view bytes) {
  if (fd_ < 0) return Status(Code::kUnavailable, "fed peer: not connected");
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(std::string("fed peer send: ") + strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status FedPeer::Connect(const std::string& host, int port, int timeout_ms, const std::string& subprotocol) {
  int64_t deadline = MonoMs() + timeout_ms;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port_str = std::to_string(port);
  if (getaddrinfo(host.c_str(), port_str.c_str(), &hints, &res) != 0 || !res) {
    return IoError("fed peer: cannot resolve " + host);
  }
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rc = ::connect(fd_, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (rc != 0) {
    int e = errno;
    ::close(fd_);
    fd_ = -1;
    return IoError("fed peer: connect " + host + ":" + port_str + ": " + strerror(e));
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{10, 0};
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  auto raw = crypto::RandomBytes(16);
  std::string key = Base64(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
  std::string req = "GET /federation HTTP/1.1\r\nHost: " + host + ":" + port_str +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                    "\r\nSec-WebSocket-Version: 13\r\n";
  if (!subprotocol.empty()) req += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n";
  req += "User-Agent: chatd-tests-fedpeer\r\n\r\n";
  if (Status s = SendAll(req); !s.ok()) return s;
  size_t end;
  while ((end = rbuf_.find("\r\n\r\n")) == std::string::npos) {
    if (rbuf_.size() > 16384) return Status(Code::kCorrupt, "fed peer: handshake answer too large");
    if (Status s = Fill(rbuf_.size() + 1, deadline); !s.ok()) {
      handshake_response_ = rbuf_;
      return Status(s.code(), "fed peer upgrade: " + s.message());
    }
  }
  handshake_response_ = rbuf_.substr(0, end);
  rbuf_.erase(0, end + 4);
  if (handshake_response_.rfind("HTTP/1.1 101", 0) != 0) {
    return Status(Code::kCorrupt, "fed peer: upgrade refused: " + handshake_response_.substr(0, 200));
  }
  std::string accept, proto;
  std::string lower = handshake_response_;
  size_t pos = 0;
  while (pos < lower.size()) {
    size_t e = lower.find("\r\n", pos);
    if (e == std::string::npos) e = lower.size();
    std::string line = lower.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = Lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (name == "sec-websocket-accept") accept = value;
    if (name == "sec-websocket-protocol") proto = value;
  }
  auto digest = Sha1(key + kWsGuid);
  std::string expected = Base64(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
  if (accept != expected) return Status(Code::kCorrupt, "fed peer: bad Sec-WebSocket-Accept '" + accept + "'");
  if (!subprotocol.empty() && proto != subprotocol) {
    return Status(Code::kCorrupt, "fed peer: server chose subprotocol '" + proto + "'");
  }
  return Status::Ok();
}

Status FedPeer::Fill(size_t n, int64_t deadline_ms) {
  char buf[65536];
  while (rbuf_.size() < n) {
    if (fd_ < 0) return Status(Code::kUnavailable, "fed peer: not connected");
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, Remaining(deadline_ms));
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError("fed peer poll");
    }
    if (r == 0) return Status(Code::kUnavailable, "fed peer timeout");
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) {
      closed_ = true;
      if (!close_code_) close_code_ = 1006;
      return Status(Code::kUnavailable, "fed peer closed: connection ended");
    }
    rbuf_.append(buf, static_cast<size_t>(got));
  }
  return Status::Ok();
}

Status FedPeer::SendFrame(uint8_t opcode, std::string_view payload) {
  if (closed_) return Status(Code::kUnavailable, "fed peer closed: code=" + std::to_string(close_code_) + " reason=" + close_reason_);
  std::string f;
  f += static_cast<char>(0x80 | opcode);
  size_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(0x80 | n);
  } else if (n <= 0xffff) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xff);
  }
  auto mask = crypto::RandomBytes(4);
  f.append(reinterpret_cast<const char*>(mask.data()), 4);
  size_t start = f.size();
  f.append(payload);
  for (size_t i = 0; i < n; ++i) f[start + i] = static_cast<char>(f[start + i] ^ mask[i & 3]);
  return SendAll(f);
}

Status FedPeer::SendText(std::string_view text) { return SendFrame(0x1, text); }
Status FedPeer::SendBinary(std::string_view data) { return SendFrame(0x2, data); }

Status FedPeer::SendEncoded(const std::vector<std::string>& encoded) {
  std::string msg;
  for (const auto& e : encoded) {
    uint32_t n = static_cast<uint32_t>(e.size());
    char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                   static_cast<char>(n)};
    msg.append(len, 4);
    msg += e;
  }
  return SendBinary(msg);
}

Status FedPeer::SendBatch(const std::vector<crypto::Envelope>& envs) {
  std::vector<std::string> enc;
  for (const auto& e : envs) enc.push_back(crypto::EncodeEnvelope(e));
  return SendEncoded(enc);
}

Status FedPeer::ReadMessage(int64_t deadline_ms, Json* text_out, bool* got_text) {
  *got_text = false;
  if (closed_) return Status(Code::kUnavailable, "fed peer closed: code=" + std::to_string(close_code_) + " reason=" + close_reason_);
  for (;;) {
    if (Status s = Fill(2, deadline_ms); !s.ok()) return s;
    auto b0 = static_cast<uint8_t>(rbuf_[0]);
    auto b1 = static_cast<uint8_t>(rbuf_[1]);
    if (b1 & 0x80) return Status(Code::kCorrupt, "fed peer: masked server frame");
    size_t header = WsHeaderSize(b1);
    if (Status s = Fill(header, deadline_ms); !s.ok()) return s;
    uint64_t len = WsPayloadLength(rbuf_);
    if (len > kMaxMessage) return Status(Code::kCorrupt, "fed peer: frame too large");
    if (Status s = Fill(header + len, deadline_ms); !s.ok()) return s;
    uint8_t opcode = b0 & 0x0f;
    bool fin = (b0 & 0x80) != 0;
    std::string payload = rbuf_.substr(header, len);
    rbuf_.erase(0, header + len);
    if (opcode == 0x9) {
      if (Status s = SendFrame(0xA, payload); !s.ok()) return s;
      continue;
    }
    if (opcode == 0xA) continue;
    if (opcode == 0x8) {
      close_code_ = payload.size() >= 2 ? (int(uint8_t(payload[0])) << 8) | uint8_t(payload[1]) : 1005;
      close_reason_ = payload.size() > 2 ? payload.substr(2) : "";
      (void)SendFrame(0x8, payload.substr(0, std::min<size_t>(2, payload.size())));
      closed_ = true;
      return Status(Code::kUnavailable, "fed peer closed: code=" + std::to_string(close_code_) + " reason=" + close_reason_);
    }
    if (opcode != 0x0) {
      frag_opcode_ = opcode;
      frag_.clear();
    }
    frag_ += payload;
    if (!fin) continue;
    std::string msg = std::move(frag_);
    frag_.clear();
    uint8_t kind = frag_opcode_;
    frag_opcode_ = 0;
    if (kind == 0x2) {
      ++binary_messages_;
      size_t off = 0;
      while (off + 4 <= msg.size()) {
        uint32_t n = (uint32_t(uint8_t(msg[off])) << 24) | (uint32_t(uint8_t(msg[off + 1])) << 16) |
                     (uint32_t(uint8_t(msg[off + 2])) << 8) | uint32_t(uint8_t(msg[off + 3]));
        off += 4 + n;
        ++envelopes_received_;
      }
      return Status::Ok();
    }
    auto j = Json::Parse(msg);
    if (!j.ok()) return Status(Code::kCorrupt, "fed peer: control frame is not JSON: " + msg.substr(0, 200));
    controls_.push_back(*j);
    *text_out = std::move(j).value();
    *got_text = true;
    return Status::Ok();
  }
}

void FedPeer::Pump(int window_ms) {
  int64_t deadline = MonoMs() + window_ms;
  while (MonoMs() < deadline && !closed_) {
    Json j;
    bool text = false;
    Status s = ReadMessage(deadline, &j, &text);
    if (!s.ok()) return;
  }
}

Result<Json> FedPeer::WaitControl(const std::string& type, int timeout_ms) {
  int64_t deadline = MonoMs() + timeout_ms;
  for (;;) {
    Json j;
    bool text = false;
    Status s = ReadMessage(deadline, &j, &text);
    if (!s.ok()) return Status(s.code(), "waiting for '" + type + "': " + s.message());
    if (text && j.type() == type) return j;
  }
}

Status FedPeer::Handshake(const std::string& my_name, const crypto::KeyPair& key, const std::string& relay_name,
                          const crypto::PublicKey& relay_key, const std::string& vector_json, int timeout_ms) {
  auto challenge_raw = crypto::RandomBytes(32);
  std::string my_challenge = crypto::Base64UrlEncode(challenge_raw);
  auto hello = WaitControl("hello", timeout_ms);
  if (!hello.ok()) return hello.status();
  if (hello->Str("relay") != relay_name) {
    return Status(Code::kCorrupt, "relay announced itself as '" + hello->Str("relay") + "'");
  }
  relay_challenge_ = hello->Str("challenge");
  if (Status s = SendText(JsonBuilder().Add("type", "hello").Add("relay", my_name).Add("challenge", my_challenge).str());
      !s.ok()) {
    return s;
  }
  auto auth = WaitControl("auth", timeout_ms);
  if (!auth.ok()) return auth.status();
  auto sig = crypto::Base64UrlDecode(auth->Str("sig"));
  std::string theirs = SignedText(my_challenge, relay_name, my_name);
  if (!sig.ok() || !crypto::VerifySignature(relay_key, crypto::AsBytes(theirs), *sig)) {
    return Status(Code::kCorrupt, "the relay's handshake signature does not verify: " + auth->text());
  }
  std::string mine = SignedText(relay_challenge_, my_name, relay_name);
  auto my_sig = key.Sign(crypto::AsBytes(mine));
  if (Status s = SendText(JsonBuilder().Add("type", "auth").Add("sig", crypto::Base64UrlEncode(my_sig)).str()); !s.ok()) {
    return s;
  }
  auto vec = WaitControl("vector", timeout_ms);
  if (!vec.ok()) return vec.status();
  return SendText(JsonBuilder().Add("type", "vector").Add("n", 0).Raw("v", vector_json).str());
}

}  // namespace chatd::test
