#include "tests/support/ws_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

#include <sodium.h>

#include "base/time.h"
#include "tests/support/sha1.h"
#include "tests/support/ws_frame_header.h"

namespace chatd::test {
namespace {

constexpr char kWsGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kMaxHandshakeBytes = 16 * 1024;

void RandomBytes(void* buf, size_t n) {
  static const bool inited = [] { return sodium_init() >= 0; }();
  (void)inited;
  randombytes_buf(buf, n);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

int RemainingMs(int64_t deadline_ms) {
  int64_t left = deadline_ms - MonoMs();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

WsClient::~WsClient() { CloseSocket(); }

WsClient::WsClient(WsClient&& o) noexcept { *this = std::move(o); }

WsClient& WsClient::operator=(WsClient&& o) noexcept {
  if (this != &o) {
    CloseSocket();
    fd_ = std::exchange(o.fd_, -1);
    closed_ = o.closed_;
    sent_close_ = o.sent_close_;
    rbuf_ = std::move(o.rbuf_);
    frag_ = std::move(o.frag_);
    frag_opcode_ = o.frag_opcode_;
    max_message_bytes_ = o.max_message_bytes_;
    last_error_ = o.last_error_;
    close_code_ = o.close_code_;
    close_reason_ = std::move(o.close_reason_);
    handshake_status_ = o.handshake_status_;
    handshake_response_ = std::move(o.handshake_response_);
    discarded_ = o.discarded_;
    pongs_ = o.pongs_;
  }
  return *this;
}

void WsClient::CloseSocket() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

bool WsClient::IsTimeout(const Status& s) {
  return !s.ok() && s.message().rfind("ws timeout", 0) == 0;
}

Status WsClient::Fail(WsError kind, std::string message) {
  last_error_ = kind;
  if (kind == WsError::kTimeout) return Status(Code::kUnavailable, "ws timeout: " + message);
  if (kind == WsError::kClosed) return Status(Code::kUnavailable, "ws closed: " + message);
  if (kind == WsError::kProtocol) return Status(Code::kCorrupt, "ws protocol error: " + message);
  return IoError("ws i/o error: " + message);
}

Status WsClient::Connect(const std::string& host, int port, const std::string& path,
                         int timeout_ms, const std::string& bind_ip) {
  CloseSocket();
  *this = WsClient();
  const int64_t deadline = MonoMs() + timeout_ms;

  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port_str = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), port_str.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) return Fail(WsError::kIo, "resolve " + host + ": " + gai_strerror(rc));
  sockaddr_in addr{};
  std::memcpy(&addr, res->ai_addr, sizeof addr);
  freeaddrinfo(res);

  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Fail(WsError::kIo, std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!bind_ip.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = 0;
    if (inet_pton(AF_INET, bind_ip.c_str(), &local.sin_addr) != 1) {
      CloseSocket();
      return Fail(WsError::kIo, "bad bind address " + bind_ip);
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      int e = errno;
      CloseSocket();
      return Fail(WsError::kIo, "bind " + bind_ip + ": " + strerror(e));
    }
  }
  // Non-blocking connect bounded by the deadline, then back to blocking.
  int flags = fcntl(fd_, F_GETFL, 0);
  fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno != EINPROGRESS) {
    int e = errno;
    CloseSocket();
    return Fail(WsError::kIo, "connect " + host + ":" + port_str + ": " + strerror(e));
  }
  if (rc != 0) {
    pollfd p{fd_, POLLOUT, 0};
    int n;
    do {
      n = ::poll(&p, 1, RemainingMs(deadline));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      CloseSocket();
      return Fail(WsError::kTimeout, "connect " + host + ":" + port_str);
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      CloseSocket();
      return Fail(WsError::kIo, "connect " + host + ":" + port_str + ": " + strerror(err));
    }
  }
  fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
  // A send never blocks a test forever, even if the server stops reading.
  timeval tv{10, 0};
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  unsigned char key_raw[16];
  RandomBytes(key_raw, sizeof key_raw);
  std::string key = Base64(std::string_view(reinterpret_cast<char*>(key_raw), sizeof key_raw));
  std::string req = "GET " + path + " HTTP/1.1\r\n";
  req += "Host: " + host + ":" + port_str + "\r\n";
  req += "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  req += "Sec-WebSocket-Key: " + key + "\r\n";
  req += "Sec-WebSocket-Version: 13\r\n";
  req += "User-Agent: chatd-tests\r\n\r\n";
  if (Status s = SendAll(req); !s.ok()) return s;

  // Read the response head; frames may follow it in the same packets.
  size_t end;
  while ((end = rbuf_.find("\r\n\r\n")) == std::string::npos) {
    if (rbuf_.size() > kMaxHandshakeBytes) return Fail(WsError::kProtocol, "handshake response too large");
    if (Status s = Fill(rbuf_.size() + 1, deadline); !s.ok()) {
      handshake_response_ = rbuf_;
      return Status(s.code(), "during handshake: " + s.message());
    }
  }
  std::string head = rbuf_.substr(0, end);
  rbuf_.erase(0, end + 4);
  handshake_response_ = head;

  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.rfind("HTTP/1.1 ", 0) != 0 || status_line.size() < 12) {
    return Fail(WsError::kProtocol, "bad status line: " + status_line);
  }
  handshake_status_ = std::atoi(status_line.c_str() + 9);
  if (handshake_status_ != 101) {
    // Keep whatever body came with it for the failure message.
    handshake_response_ += "\r\n\r\n" + rbuf_;
    CloseSocket();
    return Fail(WsError::kProtocol, "upgrade refused: " + status_line);
  }
  std::string upgrade, connection, accept;
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = Lower(Trim(line.substr(0, colon)));
    std::string value = Trim(line.substr(colon + 1));
    if (name == "upgrade") upgrade = Lower(value);
    if (name == "connection") connection = Lower(value);
    if (name == "sec-websocket-accept") accept = value;
  }
  if (upgrade != "websocket") return Fail(WsError::kProtocol, "Upgrade header is '" + upgrade + "'");
  if (connection.find("upgrade") == std::string::npos) {
    return Fail(WsError::kProtocol, "Connection header is '" + connection + "'");
  }
  auto digest = Sha1(key + kWsGuid);
  std::string expected = Base64(std::string_view(reinterpret_cast<char*>(digest.data()), digest.size()));
  if (accept != expected) {
    return Fail(WsError::kProtocol, "Sec-WebSocket-Accept '" + accept + "', expected '" + expected + "'");
  }
  last_error_ = WsError::kNone;
  return Status::Ok();
}

Status WsClient::SendAll(std::string_view bytes) {
  if (fd_ < 0) return Fail(WsError::kIo, "not connected");
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Fail(WsError::kTimeout, "send blocked 10 s");
      return Fail(WsError::kIo, std::string("send: ") + strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

std::string WsClient::EncodeFrame(WsOpcode opcode, std::string_view payload, bool fin, bool mask) {
  std::string f;
  f.reserve(payload.size() + 14);
  f += static_cast<char>((fin ? 0x80 : 0x00) | static_cast<uint8_t>(opcode));
  uint8_t mask_bit = mask ? 0x80 : 0x00;
  size_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(mask_bit | n);
  } else if (n <= 0xffff) {
    f += static_cast<char>(mask_bit | 126);
    f += static_cast<char>((n >> 8) & 0xff);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xff);
  }
  if (!mask) {
    f.append(payload);
    return f;
  }
  uint8_t key[4];
  RandomBytes(key, sizeof key);
  f.append(reinterpret_cast<char*>(key), 4);
  size_t start = f.size();
  f.append(payload);
  for (size_t i = 0; i < n; ++i) f[start + i] = static_cast<char>(f[start + i] ^ key[i & 3]);
  return f;
}

Status WsClient::SendFrame(WsOpcode opcode, std::string_view payload, bool fin) {
  if (!is_open()) return Fail(WsError::kClosed, "send on a closed connection");
  return SendAll(EncodeFrame(opcode, payload, fin, true));
}

Status WsClient::SendText(std::string_view text) { return SendFrame(WsOpcode::kText, text); }
Status WsClient::SendBinary(std::string_view data) { return SendFrame(WsOpcode::kBinary, data); }
Status WsClient::SendPing(std::string_view payload) { return SendFrame(WsOpcode::kPing, payload); }
Status WsClient::SendRaw(std::string_view bytes) { return SendAll(bytes); }

Status WsClient::Fill(size_t n, int64_t deadline_ms) {
  char buf[65536];
  while (rbuf_.size() < n) {
    if (fd_ < 0) return Fail(WsError::kClosed, "not connected");
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, RemainingMs(deadline_ms));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Fail(WsError::kIo, std::string("poll: ") + strerror(errno));
    }
    if (r == 0) return Fail(WsError::kTimeout, "no data");
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      int e = errno;
      closed_ = true;
      if (close_code_ == 0) close_code_ = 1006;
      return Fail(WsError::kClosed, std::string("recv: ") + strerror(e) + " (no close frame)");
    }
    if (got == 0) {
      closed_ = true;
      if (close_code_ == 0) close_code_ = 1006;
      return Fail(WsError::kClosed, "connection ended without a close frame (1006)");
    }
    rbuf_.append(buf, static_cast<size_t>(got));
  }
  return Status::Ok();
}

Result<WsClient::Frame> WsClient::ReadFrame(int64_t deadline_ms) {
  if (Status s = Fill(2, deadline_ms); !s.ok()) return s;
  auto b0 = static_cast<uint8_t>(rbuf_[0]);
  auto b1 = static_cast<uint8_t>(rbuf_[1]);
  if (b0 & 0x70) return Fail(WsError::kProtocol, "reserved bits set in a server frame");
  if (b1 & 0x80) return Fail(WsError::kProtocol, "server frame is masked (RFC 6455 5.1)");
  size_t header = WsHeaderSize(b1);
  if (Status s = Fill(header, deadline_ms); !s.ok()) return s;
  uint64_t len = WsPayloadLength(rbuf_);
  uint8_t opcode = b0 & 0x0f;
  bool fin = (b0 & 0x80) != 0;
  bool control = opcode >= 0x8;
  if (control && (len > 125 || !fin)) {
    return Fail(WsError::kProtocol, "control frame too long or fragmented");
  }
  if (!(opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA))) {
    return Fail(WsError::kProtocol, "unknown opcode " + std::to_string(opcode));
  }
  if (len > max_message_bytes_) {
    return Fail(WsError::kProtocol, "frame of " + std::to_string(len) + " bytes exceeds the bound");
  }
  if (Status s = Fill(header + len, deadline_ms); !s.ok()) return s;
  Frame f;
  f.fin = fin;
  f.opcode = opcode;
  f.payload = rbuf_.substr(header, len);
  rbuf_.erase(0, header + len);
  return f;
}

Result<WsMessage> WsClient::ReadMessage(int64_t deadline_ms, bool want_pong, std::string* pong) {
  if (closed_) {
    return Fail(WsError::kClosed, "code=" + std::to_string(close_code_) + " reason=" + close_reason_);
  }
  for (;;) {
    auto fr = ReadFrame(deadline_ms);
    if (!fr.ok()) return fr.status();
    Frame& f = fr.value();
    switch (f.opcode) {
      case 0x9:  // ping: answer at once with the same payload
        if (!sent_close_) {
          if (Status s = SendAll(EncodeFrame(WsOpcode::kPong, f.payload)); !s.ok()) return s;
        }
        continue;
      case 0xA:
        ++pongs_;
        if (want_pong) {
          *pong = std::move(f.payload);
          return WsMessage{WsOpcode::kPong, *pong};
        }
        continue;
      case 0x8: {
        if (f.payload.size() == 1) return Fail(WsError::kProtocol, "close frame with a 1-byte body");
        close_code_ = f.payload.size() >= 2
                          ? (int(uint8_t(f.payload[0])) << 8) | uint8_t(f.payload[1])
                          : 1005;
        close_reason_ = f.payload.size() > 2 ? f.payload.substr(2) : "";
        if (!sent_close_) {
          // Echo the code, as RFC 6455 5.5.1 asks; ignore failures (peer may be gone).
          std::string body;
          if (f.payload.size() >= 2) body = f.payload.substr(0, 2);
          (void)SendAll(EncodeFrame(WsOpcode::kClose, body));
          sent_close_ = true;
        }
        closed_ = true;
        return Fail(WsError::kClosed,
                    "code=" + std::to_string(close_code_) + " reason=" + close_reason_);
      }
      case 0x0:
        if (frag_opcode_ == 0) return Fail(WsError::kProtocol, "continuation without a start");
        break;
      default:  // text or binary
        if (frag_opcode_ != 0) return Fail(WsError::kProtocol, "new message inside a fragmented one");
        frag_opcode_ = f.opcode;
        frag_.clear();
        break;
    }
    if (frag_.size() + f.payload.size() > max_message_bytes_) {
      return Fail(WsError::kProtocol, "message exceeds the bound of " +
                                          std::to_string(max_message_bytes_) + " bytes");
    }
    frag_ += f.payload;
    if (!f.fin) continue;
    WsMessage m;
    m.opcode = static_cast<WsOpcode>(frag_opcode_);
    m.data = std::move(frag_);
    frag_.clear();
    frag_opcode_ = 0;
    if (want_pong) {
      ++discarded_;
      continue;
    }
    last_error_ = WsError::kNone;
    return m;
  }
}

Result<WsMessage> WsClient::RecvMessage(int timeout_ms) {
  return ReadMessage(MonoMs() + timeout_ms, false, nullptr);
}

Result<std::string> WsClient::RecvText(int timeout_ms) {
  auto m = RecvMessage(timeout_ms);
  if (!m.ok()) return m.status();
  if (m->opcode != WsOpcode::kText) {
    return Fail(WsError::kProtocol, "binary message (" + std::to_string(m->data.size()) + " bytes)");
  }
  return std::move(m->data);
}

Result<std::string> WsClient::WaitPong(int timeout_ms) {
  std::string pong;
  auto m = ReadMessage(MonoMs() + timeout_ms, true, &pong);
  if (!m.ok()) return m.status();
  return pong;
}

Status WsClient::Close(uint16_t code, std::string_view reason, int timeout_ms) {
  if (fd_ < 0) return Status::Ok();
  if (!closed_ && !sent_close_) {
    std::string body;
    body += static_cast<char>(code >> 8);
    body += static_cast<char>(code & 0xff);
    body.append(reason.substr(0, 123));
    Status s = SendAll(EncodeFrame(WsOpcode::kClose, body));
    sent_close_ = true;
    if (s.ok()) {
      // Wait for the server's close frame (or the end of the connection).
      int64_t deadline = MonoMs() + timeout_ms;
      while (!closed_) {
        auto m = ReadMessage(deadline, false, nullptr);
        if (!m.ok() && last_error_ != WsError::kNone) break;
      }
    }
  }
  ::shutdown(fd_, SHUT_RDWR);
  CloseSocket();
  closed_ = true;
  return Status::Ok();
}

void WsClient::Abort() {
  if (fd_ >= 0) {
    // RST instead of FIN: the server sees the client vanish.
    linger lg{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  CloseSocket();
  closed_ = true;
}

}  // namespace chatd::test
