// tests/support/fed_peer.h — a fake federation peer: our own WebSocket client on a
// relay's federation listener, speaking the link protocol of relay/federation.h.
//
// FedPeer connects to ws://HOST:PORT/federation with "Sec-WebSocket-Protocol:
// chatd-federation" (the support WsClient sends no subprotocol, so this file carries its
// own small RFC 6455 client), then Handshake() runs the mutual signed handshake: both
// sides send hello with a 32-byte challenge; each signs
//     "chatd-federation-v1\n" + peer's challenge + "\n" + own name + "\n" + peer name
// with its Ed25519 key (the relay's auth is checked against its public key here); then
// we send our vector. After that SendBatch() sends one binary message of envelopes, each
// u32be length + crypto::EncodeEnvelope bytes, exactly as a relay streams them.
//
// Whatever the relay sends (its own stream of envelopes, acks) is read by Pump() and
// kept: control frames as parsed JSON, binary frames counted. One thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "tests/support/json.h"

namespace chatd::test {

class FedPeer {
 public:
  FedPeer() = default;
  ~FedPeer();
  FedPeer(const FedPeer&) = delete;
  FedPeer& operator=(const FedPeer&) = delete;

  // TCP connect and WebSocket upgrade with the chatd-federation subprotocol. The answer
  // must be 101 with a correct Sec-WebSocket-Accept.
  Status Connect(const std::string& host, int port, int timeout_ms = 5000,
                 const std::string& subprotocol = "chatd-federation");

  // The handshake as relay `my_name`, signing with `key`; the relay must announce itself
  // as `relay_name` and sign with `relay_key`. Sends {"type":"vector","v":vector_json}.
  // Waits for the relay's hello, auth and vector.
  Status Handshake(const std::string& my_name, const crypto::KeyPair& key, const std::string& relay_name,
                   const crypto::PublicKey& relay_key, const std::string& vector_json = "{}",
                   int timeout_ms = 5000);

  // One binary message: for each envelope u32be length + EncodeEnvelope bytes.
  Status SendBatch(const std::vector<crypto::Envelope>& envs);
  // One binary message of already-encoded envelopes (each gets its length prefix).
  Status SendEncoded(const std::vector<std::string>& encoded);
  Status SendText(std::string_view text);
  Status SendBinary(std::string_view data);

  // Reads whatever arrives for up to window_ms (returns early on a close).
  void Pump(int window_ms);
  // Reads until a control frame with "type" == type arrives (kept in controls()).
  Result<Json> WaitControl(const std::string& type, int timeout_ms);

  bool open() const { return fd_ >= 0 && !closed_; }
  int close_code() const { return close_code_; }
  const std::string& close_reason() const { return close_reason_; }
  const std::vector<Json>& controls() const { return controls_; }
  uint64_t binary_messages() const { return binary_messages_; }
  uint64_t envelopes_received() const { return envelopes_received_; }
  const std::string& handshake_response() const { return handshake_response_; }
  const std::string& relay_challenge() const { return relay_challenge_; }

 private:
  Status SendFrame(uint8_t opcode, std::string_view payload);
  Status SendAll(std::string_view bytes);
  Status Fill(size_t n, int64_t deadline_ms);
  // Reads one data message (text: parsed into controls_; binary: counted). kUnavailable
  // on timeout, error on close.
  Status ReadMessage(int64_t deadline_ms, Json* text_out, bool* got_text);

  int fd_ = -1;
  bool closed_ = false;
  std::string rbuf_, frag_;
  uint8_t frag_opcode_ = 0;
  int close_code_ = 0;
  std::string close_reason_;
  std::string handshake_response_;
  std::string relay_challenge_;
  std::vector<Json> controls_;
  uint64_t binary_messages_ = 0, envelopes_received_ = 0;
};

// A 63-bit snowflake id for `unix_ms` (chatd's HLC layout: ms since 2024-01-01 << 22 |
// counter << 10 | node).
uint64_t SnowflakeAt(int64_t unix_ms, uint32_t counter, uint32_t node);

}  // namespace chatd::test
