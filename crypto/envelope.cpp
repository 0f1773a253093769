#include "crypto/envelope.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "crypto/bytes.h"

namespace chatd::crypto {
namespace {

// A fresh salt per envelope without a getrandom() system call per envelope: salts are
// cut from a per-thread block of kernel randomness, and each is wiped from the block
// once handed out. (Salts are stored next to the body; they only stop guessing erased
// short texts from body_hash, so they need to be unpredictable, not secret.)
std::string NextSalt() {
  static constexpr size_t kBlock = 4096;
  thread_local std::array<uint8_t, kBlock> block;
  thread_local size_t used = kBlock;
  if (used + kSaltLen > kBlock) {
    Bytes fresh = RandomBytes(kBlock);
    std::memcpy(block.data(), fresh.data(), kBlock);
    used = 0;
  }
  std::string salt(reinterpret_cast<const char*>(block.data() + used), kSaltLen);
  sodium_memzero(block.data() + used, kSaltLen);
  used += kSaltLen;
  return salt;
}

constexpr std::string_view kMagic = "chatd-env-v1";
static_assert(kMagic.size() == 12);

// ---- Big-endian writer ---------------------------------------------------------------

void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
void PutU16(std::string* out, uint16_t v) {
  PutU8(out, static_cast<uint8_t>(v >> 8));
  PutU8(out, static_cast<uint8_t>(v));
}
// One append per integer: byte-by-byte push_back was ~160 instructions per u64, and a
// message's header (signed, then hashed for the log) has ten of them.
void PutU32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (24 - 8 * i));
  out->append(b, sizeof b);
}
void PutU64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (56 - 8 * i));
  out->append(b, sizeof b);
}
// u8 length + bytes; an overlong string is truncated to 255 bytes (CheckBounds rejects
// such envelopes before anything is signed or verified).
void PutShortString(std::string* out, std::string_view s) {
  s = s.substr(0, 255);
  PutU8(out, static_cast<uint8_t>(s.size()));
  out->append(s);
}

// ---- Bounds-checked big-endian reader ------------------------------------------------

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool U8(uint8_t* v) {
    if (data_.size() < 1) return false;
    *v = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool U16(uint16_t* v) {
    uint64_t x = 0;
    if (!Uint(2, &x)) return false;
    *v = static_cast<uint16_t>(x);
    return true;
  }
  bool U32(uint32_t* v) {
    uint64_t x = 0;
    if (!Uint(4, &x)) return false;
    *v = static_cast<uint32_t>(x);
    return true;
  }
  bool U64(uint64_t* v) { return Uint(8, v); }
  bool Raw(size_t n, std::string_view* v) {
    if (data_.size() < n) return false;
    *v = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  bool ShortString(std::string* v) {
    uint8_t len = 0;
    std::string_view s;
    if (!U8(&len) || !Raw(len, &s)) return false;
    v->assign(s);
    return true;
  }
  template <size_t N>
  bool Array(std::array<uint8_t, N>* v) {
    std::string_view s;
    if (!Raw(N, &s)) return false;
    std::memcpy(v->data(), s.data(), N);
    return true;
  }
  size_t remaining() const { return data_.size(); }

 private:
  bool Uint(size_t n, uint64_t* v) {
    if (data_.size() < n) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) x = (x << 8) | static_cast<uint8_t>(data_[i]);
    data_.remove_prefix(n);
    *v = x;
    return true;
  }

  std::string_view data_;
};

bool IsZero(const std::array<uint8_t, 32>& h) {
  return std::all_of(h.begin(), h.end(), [](uint8_t b) { return b == 0; });
}

std::string_view AsView(const std::array<uint8_t, 32>& a) {
  return {reinterpret_cast<const char*>(a.data()), a.size()};
}

struct KindInfo {
  Kind kind;
  const char* name;
};
constexpr KindInfo kKinds[] = {
    {Kind::kUserCreate, "user_create"},
    {Kind::kUserProfile, "user_profile"},
    {Kind::kUserDisable, "user_disable"},
    {Kind::kUserErase, "user_erase"},
    {Kind::kDeviceKeys, "device_keys"},
    {Kind::kSessionRevoke, "session_revoke"},
    {Kind::kChatCreate, "chat_create"},
    {Kind::kChatUpdate, "chat_update"},
    {Kind::kMemberAdd, "member_add"},
    {Kind::kMemberRemove, "member_remove"},
    {Kind::kMemberRole, "member_role"},
    {Kind::kMsgPost, "msg_post"},
    {Kind::kMsgEdit, "msg_edit"},
    {Kind::kMsgDelete, "msg_delete"},
    {Kind::kReaction, "reaction"},
    {Kind::kReceipt, "receipt"},
    {Kind::kRedaction, "redaction"},
    {Kind::kHideForMe, "hide_for_me"},
    {Kind::kContactRequest, "contact_request"},
    {Kind::kContactAccept, "contact_accept"},
    {Kind::kContactRemove, "contact_remove"},
    {Kind::kBlock, "block"},
    {Kind::kUnblock, "unblock"},
    {Kind::kPrivacy, "privacy"},
    {Kind::kFileCreate, "file_create"},
    {Kind::kFileVersion, "file_version"},
};

}  // namespace

const char* KindName(Kind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "unknown";
}

bool KindFromInt(uint16_t v, Kind* out) {
  for (const auto& k : kKinds) {
    if (static_cast<uint16_t>(k.kind) == v) {
      *out = k.kind;
      return true;
    }
  }
  return false;
}

bool Envelope::erased() const { return body.empty() && salt.empty() && !IsZero(body_hash); }

bool IsValidRelayName(std::string_view name) {
  if (name.empty() || name.size() > kMaxOriginLen) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

Status CheckBounds(const Envelope& env) {
  if (!IsValidRelayName(env.origin)) {
    return Corrupt("envelope: origin must be 1..32 bytes of [a-z0-9-]");
  }
  if (env.seq == 0) return Corrupt("envelope: seq must be >= 1");
  if (env.id > kMaxId) return Corrupt("envelope: id exceeds 63 bits");
  if (env.deps.size() > kMaxDeps) return Corrupt("envelope: more than 1024 deps");
  for (size_t i = 0; i < env.deps.size(); ++i) {
    if (!IsValidRelayName(env.deps[i].first)) {
      return Corrupt("envelope: dep " + std::to_string(i) + " has an invalid relay name");
    }
    if (i > 0 && !(env.deps[i - 1].first < env.deps[i].first)) {
      return Corrupt("envelope: deps not sorted by name or not unique at \"" + env.deps[i].first +
                     "\"");
    }
  }
  if (env.device.size() > kMaxDeviceLen) return Corrupt("envelope: device longer than 64 bytes");
  Kind kind;
  if (!KindFromInt(static_cast<uint16_t>(env.kind), &kind)) {
    return Corrupt("envelope: unknown kind " + std::to_string(static_cast<int>(env.kind)));
  }
  if (env.body.size() > kMaxBodyLen) return Corrupt("envelope: body larger than 1 MiB");
  if (!env.salt.empty() && env.salt.size() != kSaltLen) {
    return Corrupt("envelope: salt must be empty or 16 bytes");
  }
  return Status::Ok();
}

std::string CanonicalHeader(const Envelope& env) {
  std::string out;
  out.reserve(kMagic.size() + 1 + env.origin.size() + 8 + 8 + 2 + env.deps.size() * 16 + 8 + 8 + 1 +
              env.device.size() + 2 + 8 + 32);
  out.append(kMagic);
  PutShortString(&out, env.origin);
  PutU64(&out, env.seq);
  PutU64(&out, env.id);
  size_t ndeps = std::min<size_t>(env.deps.size(), 0xffff);
  PutU16(&out, static_cast<uint16_t>(ndeps));
  for (size_t i = 0; i < ndeps; ++i) {
    PutShortString(&out, env.deps[i].first);
    PutU64(&out, env.deps[i].second);
  }
  PutU64(&out, env.chat_id);
  PutU64(&out, env.author);
  PutShortString(&out, env.device);
  PutU16(&out, static_cast<uint16_t>(env.kind));
  PutU64(&out, static_cast<uint64_t>(env.created_at));
  out.append(AsView(env.body_hash));
  return out;
}

Status SealBody(Envelope& env) {
  Status st = CheckBounds(env);
  if (!st.ok()) return st;
  env.salt = NextSalt();
  env.body_hash = Blake2b256(env.salt, env.body);
  return Status::Ok();
}

void SignHeader(Envelope& env, const KeyPair& key) { env.sig = key.Sign(AsBytes(CanonicalHeader(env))); }

Status Seal(Envelope& env, const KeyPair& key) {
  Status st = SealBody(env);
  if (!st.ok()) return st;
  SignHeader(env, key);
  return Status::Ok();
}

Status Verify(const Envelope& env, const PublicKey& pk) {
  Status st = CheckBounds(env);
  if (!st.ok()) return st;
  if (!env.erased()) {
    if (env.salt.size() != kSaltLen) {
      return Corrupt("envelope: salt missing (16 bytes required unless erased)");
    }
    if (Blake2b256(env.salt, env.body) != env.body_hash) {
      return Corrupt("envelope: body_hash does not match salt and body");
    }
  }
  if (!VerifySignature(pk, AsBytes(CanonicalHeader(env)), env.sig)) {
    return Corrupt("envelope: bad signature for origin " + env.origin + " seq " +
                   std::to_string(env.seq));
  }
  return Status::Ok();
}

std::array<uint8_t, 32> HeaderHash(const Envelope& env) {
  return Blake2b256(AsBytes(CanonicalHeader(env)));
}

std::string EncodeEnvelope(const Envelope& env) {
  std::string out = CanonicalHeader(env);
  out.reserve(out.size() + 64 + 4 + env.body.size() + 1 + env.salt.size());
  out.append(reinterpret_cast<const char*>(env.sig.data()), env.sig.size());
  std::string_view body = std::string_view(env.body).substr(0, 0xffffffffu);
  PutU32(&out, static_cast<uint32_t>(body.size()));
  out.append(body);
  PutShortString(&out, env.salt);
  return out;
}

Result<Envelope> DecodeEnvelope(std::string_view data) {
  Reader r(data);
  Envelope env;
  auto truncated = [](const char* what) {
    return Corrupt(std::string("envelope: truncated at ") + what);
  };
  std::string_view magic;
  if (!r.Raw(kMagic.size(), &magic)) return truncated("magic");
  if (magic != kMagic) return Corrupt("envelope: bad magic (not chatd-env-v1)");
  uint8_t origin_len = 0;
  std::string_view origin;
  if (!r.U8(&origin_len)) return truncated("origin");
  if (origin_len == 0 || origin_len > kMaxOriginLen) {
    return Corrupt("envelope: origin length out of range");
  }
  if (!r.Raw(origin_len, &origin)) return truncated("origin");
  env.origin.assign(origin);
  if (!r.U64(&env.seq)) return truncated("seq");
  if (!r.U64(&env.id)) return truncated("id");
  uint16_t ndeps = 0;
  if (!r.U16(&ndeps)) return truncated("deps count");
  if (ndeps > kMaxDeps) return Corrupt("envelope: more than 1024 deps");
  // Each dep takes at least 1 + 1 + 8 bytes: refuse counts the input cannot hold
  // before reserving memory for them.
  if (static_cast<size_t>(ndeps) * 10 > r.remaining()) return truncated("deps");
  env.deps.reserve(ndeps);
  for (uint16_t i = 0; i < ndeps; ++i) {
    std::pair<std::string, uint64_t> dep;
    if (!r.ShortString(&dep.first) || !r.U64(&dep.second)) return truncated("deps");
    env.deps.push_back(std::move(dep));
  }
  if (!r.U64(&env.chat_id)) return truncated("chat_id");
  if (!r.U64(&env.author)) return truncated("author");
  if (!r.ShortString(&env.device)) return truncated("device");
  uint16_t kind = 0;
  if (!r.U16(&kind)) return truncated("kind");
  if (!KindFromInt(kind, &env.kind)) {
    return Corrupt("envelope: unknown kind " + std::to_string(kind));
  }
  uint64_t created_at = 0;
  if (!r.U64(&created_at)) return truncated("created_at");
  env.created_at = static_cast<int64_t>(created_at);
  if (!r.Array(&env.body_hash)) return truncated("body_hash");
  if (!r.Array(&env.sig)) return truncated("sig");
  uint32_t body_len = 0;
  if (!r.U32(&body_len)) return truncated("body length");
  if (body_len > kMaxBodyLen) return Corrupt("envelope: body larger than 1 MiB");
  std::string_view body;
  if (!r.Raw(body_len, &body)) return truncated("body");
  env.body.assign(body);
  if (!r.ShortString(&env.salt)) return truncated("salt");
  if (r.remaining() != 0) return Corrupt("envelope: trailing bytes after salt");
  Status st = CheckBounds(env);
  if (!st.ok()) return st;
  return env;
}

void Erase(Envelope& env) {
  // Swap with empty strings so the buffers are released, not just marked empty.
  std::string().swap(env.body);
  std::string().swap(env.salt);
}

}  // namespace chatd::crypto
