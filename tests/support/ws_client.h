// tests/support/ws_client.h — a small, strict RFC 6455 client for tests.
//
// WsClient speaks WebSocket over one blocking POSIX TCP socket, with no library in
// between, so the tests see exactly what chatd puts on the wire: the HTTP/1.1 upgrade
// (random Sec-WebSocket-Key, Sec-WebSocket-Accept checked with SHA-1 + base64), masked
// client frames, text/binary/ping/pong/close, fragmented messages reassembled, and a
// bound on message size. It answers pings by itself and reports a close frame as an error
// carrying the close code and reason (also kept in last_close_code()/last_close_reason()).
// It is strict about server frames: masked frames, reserved bits, oversized or fragmented
// control frames and stray continuations are protocol errors.
//
// Timeouts use poll() on the blocking socket; a partial frame survives a timeout and the
// next call resumes it. One WsClient belongs to one thread at a time; distinct clients are
// independent. Movable, not copyable; the destructor closes the socket without a close
// handshake (call Close() for a clean one).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace chatd::test {

enum class WsOpcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Why the last call failed.
enum class WsError { kNone, kTimeout, kClosed, kProtocol, kIo };

struct WsMessage {
  WsOpcode opcode = WsOpcode::kText;  // kText or kBinary
  std::string data;
};

class WsClient {
 public:
  WsClient() = default;
  ~WsClient();
  WsClient(WsClient&& other) noexcept;
  WsClient& operator=(WsClient&& other) noexcept;
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // TCP connect (optionally from bind_ip, e.g. "127.0.0.7" for load tests) and upgrade.
  // A non-101 answer is an error; handshake_status()/handshake_response() tell what came.
  Status Connect(const std::string& host, int port, const std::string& path = "/ws",
                 int timeout_ms = 5000, const std::string& bind_ip = "");

  Status SendText(std::string_view text);
  Status SendBinary(std::string_view data);
  Status SendPing(std::string_view payload = {});
  // One masked frame; fin=false starts or continues a fragmented message.
  Status SendFrame(WsOpcode opcode, std::string_view payload, bool fin = true);
  // Bytes as they are, for malformed frames.
  Status SendRaw(std::string_view bytes);
  // Encodes one frame (masked unless mask=false) without sending it.
  static std::string EncodeFrame(WsOpcode opcode, std::string_view payload, bool fin = true,
                                 bool mask = true);

  // The next complete text message. Pings are answered, pongs noted; a binary message is
  // a protocol error here (chatd sends text only); a close frame is a kClosed error whose
  // message carries the code and reason. A timeout is a kTimeout error.
  Result<std::string> RecvText(int timeout_ms);
  // The next complete data message, text or binary.
  Result<WsMessage> RecvMessage(int timeout_ms);
  // Waits for a pong (after SendPing); data messages arriving meanwhile are discarded
  // and counted in discarded_messages().
  Result<std::string> WaitPong(int timeout_ms);

  // Sends a close frame and waits (bounded) for the server's close frame, then closes the
  // socket. Safe to call on an already closed client.
  Status Close(uint16_t code = 1000, std::string_view reason = {}, int timeout_ms = 2000);
  // Drops the TCP connection with no close frame (a client vanishing).
  void Abort();

  bool is_open() const { return fd_ >= 0 && !closed_; }
  WsError last_error() const { return last_error_; }
  // Close code the server sent (1005 if its close frame had none, 1006 if the connection
  // ended with no close frame), 0 if no close happened yet.
  int last_close_code() const { return close_code_; }
  const std::string& last_close_reason() const { return close_reason_; }
  int handshake_status() const { return handshake_status_; }
  const std::string& handshake_response() const { return handshake_response_; }
  size_t discarded_messages() const { return discarded_; }
  int pongs_received() const { return pongs_; }
  void set_max_message_bytes(size_t n) { max_message_bytes_ = n; }
  int fd() const { return fd_; }

  static bool IsTimeout(const Status& s);

 private:
  struct Frame {
    bool fin = true;
    uint8_t opcode = 0;
    std::string payload;
  };
  Status Fail(WsError kind, std::string message);
  Status SendAll(std::string_view bytes);
  // Reads until rbuf_ holds at least n bytes or the deadline (MonoMs) passes.
  Status Fill(size_t n, int64_t deadline_ms);
  Result<Frame> ReadFrame(int64_t deadline_ms);
  Result<WsMessage> ReadMessage(int64_t deadline_ms, bool want_pong, std::string* pong);
  void CloseSocket();

  int fd_ = -1;
  bool closed_ = false;      // close handshake seen or connection gone
  bool sent_close_ = false;
  std::string rbuf_;         // bytes received, not yet parsed
  std::string frag_;         // data of a fragmented message in progress
  uint8_t frag_opcode_ = 0;  // 0 = none in progress
  size_t max_message_bytes_ = 16u << 20;
  WsError last_error_ = WsError::kNone;
  int close_code_ = 0;
  std::string close_reason_;
  int handshake_status_ = 0;
  std::string handshake_response_;
  size_t discarded_ = 0;
  int pongs_ = 0;
};

}  // namespace chatd::test
