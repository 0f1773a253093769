// relay/events.h — the JSON shapes of PROTOCOL.md, written in one place.
//
// REST responses and WebSocket events share these writers so a message looks the same in
// history, in `new_message` and after `sync`. Pure functions; thread-safe.
#pragma once

#include <string>

#include "base/json.h"
#include "store/store.h"

namespace chatd::events {

void WriteUserPublic(json::JsonWriter& w, const store::UserRow& u);
// The public profile's fields alone, inside an object the caller opened (the admin API
// adds the account's state to them).
void WriteUserFields(json::JsonWriter& w, const store::UserRow& u);
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
