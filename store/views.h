// store/views.h — derives the views (users, chats, members, messages, reactions, receipts, files)
// from one envelope. Internal to the store; called by Writer::Append and RebuildViews on
// the writer connection inside the caller's transaction.
//
// Views never depend on arrival order where two changes race: edits and role changes are
// last-writer-wins by envelope id; reactions and members are keyed sets.
#pragma once

#include <cstdint>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "crypto/envelope.h"
#include "store/db.h"

namespace chatd::store {

struct Privacy;

// Every table derived from the log: what RebuildViews empties and re-derives, and what
// `chatctl store verify` compares with a rebuild.
inline constexpr const char* kViewTables[] = {
    "users",        "chats",        "members",          "messages",       "reactions",      "receipts", "member_events",
    "revocations",  "block_events", "contact_requests", "contacts",       "hidden",         "files",    "message_edits",
    "erased_posts", "device_keys",  "privacy",          "profile_fields", "system_audience"};

// `erased`, if given, receives the log positions whose bodies the envelope erased (a delete
// for everyone erases its message's post and edits; an edit of a deleted message, itself),
// including positions not in the log yet, which the caller must erase when it appends them.
Status ApplyToViews(Db& db, const crypto::Envelope& env, uint64_t pos, std::vector<uint64_t>* erased = nullptr);

// Privacy settings (kind 35, docs/ENVELOPE.md): the setting names; whether a privacy body
// is valid (an object of known settings, at least one, each with one of its values:
// "everyone"|"contacts"|"nobody", read_receipts a boolean); and the view's settings as
// UserRow reads them ("setting=value,..." from the privacy table) into *out.
inline constexpr const char* kPrivacySettings[] = {"last_seen", "profile_photo", "about", "groups", "read_receipts"};
bool ValidPrivacyBody(const json::Value& body);
void ReadPrivacy(std::string_view text, Privacy* out);

// Disappearing messages (docs/ENVELOPE.md): the time (ms) at which a msg_post, msg_edit or
// msg_delete envelope's body is due to be erased, from its parsed body's `expires_at`; 0 if
// it has none, or one outside (created_at, created_at + 365 days] (a delete's may be at or
// before its created_at: its message's time, due at once), or the envelope is of another
// kind. When a delete's is due, its message's tombstone leaves the view too.
int64_t ExpiresAt(const crypto::Envelope& env, const json::Value& body);
// Lists a due-to-disappear envelope in `expiring`, whether or not it applied to the views
// (every relay erases the same envelopes). A no-op for the others. Idempotent.
Status ScheduleExpiry(Db& db, const crypto::Envelope& env, uint64_t pos);
// Erases the body and salt of the envelopes at these log positions (the signed header
// stays); positions not in the log are skipped.
Status EraseBodies(Db& db, const std::vector<uint64_t>& positions);

}  // namespace chatd::store

namespace chatd::store {

// Columns every envelope query selects, in the order ReadEnvelope expects.
inline constexpr const char* kEnvelopeColumns =
    "pos, origin, seq, id, chat_id, author, device, kind, created_at, deps, body_hash, sig, body, salt";
inline constexpr int kEnvelopeColumnCount = 14;
struct EnvelopeRow;
EnvelopeRow ReadEnvelope(const Stmt& st);

}  // namespace chatd::store
