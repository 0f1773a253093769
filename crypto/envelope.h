// crypto/envelope.h — signed, sequenced envelopes: canonical bytes, sealing,
// verification, erasure and the federation wire encoding.
//
// Contract:
//   * Envelope is a plain value type: it owns all its fields, is copyable and movable,
//     and is not synchronized (one thread mutates it at a time; concurrent readers of an
//     unchanging envelope are fine).
//   * The free functions are stateless and safe to call from any thread. Seal() reads
//     the key pair (const) and randomness; everything else is a pure function.
//   * Untrusted input: DecodeEnvelope() and Verify() accept anything an attacker can
//     send; they never crash, assert or read out of bounds, and report problems as
//     Code::kCorrupt with a precise message.
//   * The byte layouts of CanonicalHeader() and EncodeEnvelope() are frozen (version 1)
//     and documented byte by byte in docs/ENVELOPE.md; tests/vectors/envelope_v1.txt pins
//     them. Changing them is a protocol change (new magic), never an edit.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "crypto/keys.h"

namespace chatd::crypto {

enum class Kind : uint16_t {
  kUserCreate = 1,
  kUserProfile = 2,
  kUserDisable = 3,
  kUserErase = 4,
  kDeviceKeys = 5,
  kSessionRevoke = 6,  // logout: one device, or every token of the user issued before a time
  kChatCreate = 10,
  kChatUpdate = 11,
  kMemberAdd = 12,
  kMemberRemove = 13,
  kMemberRole = 14,
  kMsgPost = 20,
  kMsgEdit = 21,
  kMsgDelete = 22,
  kReaction = 23,
  kReceipt = 24,
  kRedaction = 25,
  kHideForMe = 26,
  kContactRequest = 30,
  kContactAccept = 31,
  kContactRemove = 32,
  kBlock = 33,
  kUnblock = 34,
  kPrivacy = 35,
  kFileCreate = 40,
  kFileVersion = 41,
};

// snake_case name ("msg_post", "member_add", ...); "unknown" for values outside the enum.
const char* KindName(Kind kind);
// True and *out set iff v is one of the Kind values above.
bool KindFromInt(uint16_t v, Kind* out);

// Bounds enforced by Seal, Verify and DecodeEnvelope.
inline constexpr size_t kMaxOriginLen = 32;      // relay names: 1..32 of [a-z0-9-]
inline constexpr size_t kMaxDeviceLen = 64;      // device ids: 0..64 bytes
inline constexpr size_t kMaxDeps = 1024;         // entries in deps
inline constexpr size_t kMaxBodyLen = 1u << 20;  // 1 MiB
inline constexpr size_t kSaltLen = 16;
inline constexpr uint64_t kMaxId = (uint64_t{1} << 63) - 1;  // ids are 63-bit

struct Envelope {
  std::string origin;  // relay name, 1..32 bytes of [a-z0-9-]
  uint64_t seq = 0;    // gap-free per-origin, starts at 1
  uint64_t id = 0;     // HLC snowflake (63-bit)
  // The origin's version vector when it created this; kept sorted by name, unique names.
  std::vector<std::pair<std::string, uint64_t>> deps;
  uint64_t chat_id = 0;  // 0 = system stream
  uint64_t author = 0;   // user id (0 = the relay itself)
  std::string device;    // device id, 0..64 bytes
  Kind kind = Kind::kMsgPost;
  int64_t created_at = 0;               // unix ms
  std::array<uint8_t, 32> body_hash{};  // BLAKE2b-256(salt ‖ body)
  std::array<uint8_t, 64> sig{};        // Ed25519 over CanonicalHeader()
  std::string body;                     // payload (JSON text); empty when erased
  std::string salt;                     // 16 random bytes; empty when erased

  // Body and salt dropped, header (with a non-zero body_hash) kept.
  bool erased() const;
};

// True iff name is a valid relay name: 1..32 bytes of [a-z0-9-].
bool IsValidRelayName(std::string_view name);

// Checks the structural rules shared by Seal, Verify and DecodeEnvelope: origin and
// dep names are relay names, seq >= 1, id <= kMaxId, deps sorted by name and unique
// and at most kMaxDeps, device at most kMaxDeviceLen, kind known, body at most
// kMaxBodyLen, salt empty or kSaltLen bytes. Does not check body_hash or sig.
// kCorrupt on failure.
Status CheckBounds(const Envelope& env);

// Deterministic binary layout of the header (everything except sig, body, salt):
// magic "chatd-env-v1" (12 bytes) | u8 len + origin | u64be seq | u64be id |
// u16be ndeps + ndeps×(u8 len + name, u64be seq) | u64be chat_id | u64be author |
// u8 len + device | u16be kind | i64be created_at | 32 body_hash.
// Lengths are truncated to their field width if the envelope is out of bounds, so call
// CheckBounds first when the envelope is untrusted (Seal and Verify do).
std::string CanonicalHeader(const Envelope& env);

// Sets salt (16 random bytes), body_hash = BLAKE2b-256(salt ‖ body) and sig (the key's
// signature over CanonicalHeader). Validates field bounds first (kCorrupt, nothing
// changed on error).
Status Seal(Envelope& env, const KeyPair& key);
// Seal in two steps, for signing many envelopes off the thread that builds them:
// SealBody validates bounds and sets salt and body_hash (the header is then final);
// SignHeader sets sig. Seal(env, key) == SealBody(env) then SignHeader(env, key).
Status SealBody(Envelope& env);
void SignHeader(Envelope& env, const KeyPair& key);

// Checks field bounds, deps sorted/unique, body_hash against salt ‖ body (unless
// erased), and sig against pk. kCorrupt with a precise message on failure.
Status Verify(const Envelope& env, const PublicKey& pk);

// Header hash used to detect equivocation: BLAKE2b-256(CanonicalHeader(env)).
std::array<uint8_t, 32> HeaderHash(const Envelope& env);

// Full wire encoding: CanonicalHeader | 64 sig | u32be body len + body |
// u8 salt len + salt. Used for federation and fuzzing.
std::string EncodeEnvelope(const Envelope& env);
// Decodes EncodeEnvelope output. Bounds-checks everything (CheckBounds, and no trailing
// bytes) and never crashes on any input; kCorrupt on failure. Does not verify the
// signature or body hash: call Verify with the origin's key.
Result<Envelope> DecodeEnvelope(std::string_view data);

// Erase: drop body and salt, keep header and sig (the envelope still verifies).
void Erase(Envelope& env);

}  // namespace chatd::crypto
