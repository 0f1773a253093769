// Chats: direct and group creation, roles, the one-direct-chat-per-pair rule, the group
// size limit, listing and access by non-members (PROTOCOL.md "POST /chats", "GET /chats").
#include "tests/integration/harness.h"

namespace chatd::test {
namespace {

// user_id → role from a chat's participants array.
std::map<std::string, std::string> Roles(const rapidjson::Value& chat) {
  std::map<std::string, std::string> out;
  const auto& ps = Get(chat, "participants");
  if (!ps.IsArray()) return out;
  for (const auto& p : ps.GetArray()) out[StrOf(Get(p, "user_id"))] = StrOf(Get(p, "role"));
  return out;
}

// chat_ids in GET /chats, REQUIRE-ing the documented envelope.
std::vector<std::string> ListChats(const HostPort& api, const std::string& token) {
  HttpResponse r = ApiGet(api, "/chats", token);
  INFO(r.Describe());
  REQUIRE(r.status == 200);
  REQUIRE(r.success());
  // data is the list, or an object holding it as "chats".
  const rapidjson::Value* list = &r.data();
  if (list->IsObject()) list = &Get(*list, "chats");
  REQUIRE(list->IsArray());
  std::vector<std::string> ids;
  for (const auto& c : list->GetArray()) {
    CHECK(IsDecimalId(Get(c, "chat_id")));
    CHECK(Get(c, "chat_type").IsString());
    ids.push_back(StrOf(Get(c, "chat_id")));
  }
  return ids;
}

size_t Count(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<size_t>(std::count(v.begin(), v.end(), x));
}

}  // namespace

TEST_CASE("direct chat: shape, creator is admin, one chat per pair", "[integration][chats]") {
  auto relay = StartRelay();
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));

  HttpResponse r = ApiPost(relay->api(), "/chats",
                           JsonBuilder().Add("chat_type", "direct")
                               .Raw("participants", JsonStringArray({bob.user_id})).str(),
                           alice.access_token);
  INFO(r.Describe());
  REQUIRE(r.status == 201);
  REQUIRE(r.success());
  const auto& chat = r.data();
  std::string chat_id = StrOf(Get(chat, "chat_id"));
  CHECK(IsDecimalId(Get(chat, "chat_id")));
  CHECK(StrOf(Get(chat, "chat_type")) == "direct");
  CHECK(chat.HasMember("chat_name"));
  CHECK(StrOf(Get(chat, "created_by")) == alice.user_id);
  CHECK(IsRfc3339Ms(Get(chat, "created_at")));
  auto roles = Roles(chat);
  CHECK(roles.size() == 2);
  CHECK(roles[alice.user_id] == "admin");
  CHECK(roles.count(bob.user_id) == 1);
  CHECK_FALSE(roles[bob.user_id].empty());

  // Again, from either side and with the id as a JSON number: the same chat.
  auto again = MUST(CreateChat(relay->api(), alice.access_token, "direct", {bob.user_id}));
  CHECK(again == chat_id);
  auto reverse = MUST(CreateChat(relay->api(), bob.access_token, "direct", {alice.user_id}));
  CHECK(reverse == chat_id);
  HttpResponse numeric = ApiPost(relay->api(), "/chats",
                                 JsonBuilder().Add("chat_type", "direct")
                                     .Raw("participants", "[" + bob.user_id + "]").str(),
                                 alice.access_token);
  INFO(numeric.Describe());
  CHECK((numeric.status == 200 || numeric.status == 201));
  CHECK(StrOf(Get(numeric.data(), "chat_id")) == chat_id);

  // Listed once for both members, not for carol.
  CHECK(Count(ListChats(relay->api(), alice.access_token), chat_id) == 1);
  CHECK(Count(ListChats(relay->api(), bob.access_token), chat_id) == 1);
  CHECK(Count(ListChats(relay->api(), carol.access_token), chat_id) == 0);

  // GET /chats/{id}: members yes, carol no.
  HttpResponse one = ApiGet(relay->api(), "/chats/" + chat_id, bob.access_token);
  INFO(one.Describe());
  CHECK(one.status == 200);
  CHECK(StrOf(Get(one.data(), "chat_id")) == chat_id);
  CHECK(StrOf(Get(one.data(), "chat_type")) == "direct");
  CHECK(Roles(one.data()).size() == 2);
  HttpResponse foreign = ApiGet(relay->api(), "/chats/" + chat_id, carol.access_token);
  INFO(foreign.Describe());
  CHECK((foreign.status == 403 || foreign.status == 404));
  CHECK_FALSE(foreign.success());

  // The listing carries the last message and my unread count.
  std::string mid = MUST(PostText(relay->api(), alice.access_token, chat_id, "hi bob")).Str("message_id");
  auto entry = [&](const std::string& token) {
    HttpResponse l = ApiGet(relay->api(), "/chats", token);
    const rapidjson::Value* list = &l.data();
    if (list->IsObject()) list = &Get(*list, "chats");
    Json found;
    if (list->IsArray()) {
      for (const auto& c : list->GetArray()) {
        if (StrOf(Get(c, "chat_id")) == chat_id) found = Json::FromValue(c);
      }
    }
    return found;
  };
  Json for_bob = entry(bob.access_token);
  INFO(for_bob.text());
  CHECK(StrOf(At(for_bob.root(), "last_message.message_id")) == mid);
  CHECK(StrOf(At(for_bob.root(), "last_message.content")) == "hi bob");
  REQUIRE(for_bob["unread_count"].IsInt());
  CHECK(for_bob["unread_count"].GetInt() == 1);
  Json for_alice = entry(alice.access_token);
  INFO(for_alice.text());
  REQUIRE(for_alice["unread_count"].IsInt());
  CHECK(for_alice["unread_count"].GetInt() == 0);

  // A direct chat has exactly one other person, who must exist.
  CheckRestError(ApiPost(relay->api(), "/chats",
                         JsonBuilder().Add("chat_type", "direct")
                             .Raw("participants", JsonStringArray({bob.user_id, carol.user_id})).str(),
                         alice.access_token),
                 400, "");
  HttpResponse ghost = ApiPost(relay->api(), "/chats",
                               JsonBuilder().Add("chat_type", "direct")
                                   .Raw("participants", JsonStringArray({"4611686018427387904"})).str(),
                               alice.access_token);
  INFO(ghost.Describe());
  CHECK((ghost.status == 400 || ghost.status == 404));
  CHECK(ListChats(relay->api(), alice.access_token).size() == 1);
}

TEST_CASE("group chat: roles, listing, member limit", "[integration][chats]") {
  RelayOptions opts = Options();
  opts.config.push_back({"limits", "max_group_members", "3"});
  auto relay = StartRelay(opts);
  TestUser alice = MUST(RegisterUser(*relay, "alice"));
  TestUser bob = MUST(RegisterUser(*relay, "bob"));
  TestUser carol = MUST(RegisterUser(*relay, "carol"));
  TestUser dave = MUST(RegisterUser(*relay, "dave"));

  HttpResponse r = ApiPost(relay->api(), "/chats",
                           JsonBuilder().Add("chat_type", "group").Add("chat_name", "Project Team")
                               .Raw("participants", JsonStringArray({bob.user_id, carol.user_id})).str(),
                           alice.access_token);
  INFO(r.Describe());
  REQUIRE(r.status == 201);
  const auto& chat = r.data();
  std::string group_id = StrOf(Get(chat, "chat_id"));
  CHECK(IsDecimalId(Get(chat, "chat_id")));
  CHECK(StrOf(Get(chat, "chat_type")) == "group");
  CHECK(StrOf(Get(chat, "chat_name")) == "Project Team");
  CHECK(StrOf(Get(chat, "created_by")) == alice.user_id);
  CHECK(IsRfc3339Ms(Get(chat, "created_at")));
  auto roles = Roles(chat);
  CHECK(roles.size() == 3);
  CHECK(roles[alice.user_id] == "admin");
  CHECK(roles[bob.user_id] == "member");
  CHECK(roles[carol.user_id] == "member");

  // A second group with the same people is a new chat (only direct chats are unique).
  auto second = MUST(CreateChat(relay->api(), bob.access_token, "group",
                                {alice.user_id, carol.user_id}, "Other"));
  CHECK(second != group_id);

  // Four members with a limit of three: refused, nothing created.
  size_t before = ListChats(relay->api(), alice.access_token).size();
  HttpResponse big = ApiPost(relay->api(), "/chats",
                             JsonBuilder().Add("chat_type", "group").Add("chat_name", "Too big")
                                 .Raw("participants",
                                      JsonStringArray({bob.user_id, carol.user_id, dave.user_id}))
                                 .str(),
                             alice.access_token);
  INFO(big.Describe());
  CHECK(big.status >= 400);
  CHECK(big.status < 500);
  CHECK_FALSE(big.success());
  CHECK_FALSE(big.error_code().empty());
  CHECK(ListChats(relay->api(), alice.access_token).size() == before);
  CHECK(ListChats(relay->api(), dave.access_token).empty());

  // Listing: members see the group, dave does not and cannot read it.
  auto bobs = ListChats(relay->api(), bob.access_token);
  CHECK(Count(bobs, group_id) == 1);
  CHECK(Count(bobs, second) == 1);
  HttpResponse one = ApiGet(relay->api(), "/chats/" + group_id, carol.access_token);
  CHECK(one.status == 200);
  CHECK(StrOf(Get(one.data(), "chat_name")) == "Project Team");
  CHECK(Roles(one.data()).size() == 3);
  HttpResponse foreign = ApiGet(relay->api(), "/chats/" + group_id, dave.access_token);
  INFO(foreign.Describe());
  CHECK((foreign.status == 403 || foreign.status == 404));
  HttpResponse foreign_hist = ApiGet(relay->api(), "/chats/" + group_id + "/messages", dave.access_token);
  INFO(foreign_hist.Describe());
  CHECK((foreign_hist.status == 403 || foreign_hist.status == 404));
}

}  // namespace chatd::test
