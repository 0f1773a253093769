// relay/events.h — the JSON shapes of PROTOCOL.md, written in one place.
//
// REST responses and WebSocket events share these writers so a message looks the same in
// history, in `new_message` and after `sync`. Pure functions; thread-safe.
#pragma once

#include <string>

#include "base/json.h"
#include "store/store.h"

namespace chatd::events {

// A user's profile as `viewer` may see it: the profile photo and status message only if
// the user's privacy settings let the viewer in ("contacts": `q` tells whether the viewer
// is one). The user sees all of their own profile, and an operator (viewer 0) too.
void WriteUserFor(json::JsonWriter& w, const store::UserRow& u, uint64_t viewer, store::Queries& q);
// The profile's fields alone, unmasked, inside an object the caller opened (the admin API
// adds the account's state to them).
void WriteUserFields(json::JsonWriter& w, const store::UserRow& u);
// {"last_seen", "profile_photo", "about", "groups", "read_receipts"}.
void WritePrivacy(json::JsonWriter& w, const store::Privacy& p);
// The user's own view of their profile: every field and the privacy settings
// (GET/PATCH /users/me, profile_updated).
void WriteOwnProfile(json::JsonWriter& w, const store::UserRow& u);
void WriteMessage(json::JsonWriter& w, const store::MessageRow& m);
void WriteChat(json::JsonWriter& w, const store::ChatRow& c);
// The optional `forward_from: {chat_id, message_id}` of a send (REST or WebSocket): both
// ids, or 0s if absent or null; bad_request if malformed.
Status ReadForwardFrom(const json::Value& doc, uint64_t* chat_id, uint64_t* message_id);
// The optional `encrypted` flag of a send (REST or WebSocket): absent or null = false;
// bad_request if not a boolean.
Status ReadEncrypted(const json::Value& doc, bool* encrypted);
// An `error` event: {"type":"error","code":..,"message":..,"ref":..}.
std::string ErrorEvent(const Status& s, std::string_view ref);
// The client event for a log entry, or "" if the entry has no client event. Looks up
// what it needs (the message view, the sender) through `q`.
std::string EventFor(const store::EnvelopeRow& row, store::Queries& q);

}  // namespace chatd::events
