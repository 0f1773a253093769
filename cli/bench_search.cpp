// The search scenario: corpus, populating, waiting for the index, open-loop queries and
// the report. See bench_search.h.
#include "cli/bench_search.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "base/json.h"
#include "base/time.h"
#include "cli/bench_engine.h"
#include "cli/bench_proc.h"

namespace chatd::cli::bench {

const char* SearchKindName(int kind) {
  static const char* const kNames[] = {"token", "common", "page"};
  return kind >= 0 && kind < kSearchKinds ? kNames[kind] : "?";
}

uint64_t SearchResult::total_sent() const { return sent[0] + sent[1] + sent[2]; }
uint64_t SearchResult::total_answered() const { return answered[0] + answered[1] + answered[2]; }
uint64_t SearchResult::total_wrong() const { return wrong[0] + wrong[1] + wrong[2]; }

namespace {

// ---- the corpus: deterministic texts, and what a search over them must find ----

constexpr uint64_t kSeed = 0x5ea2c4b3e9c7d1f1ULL;
constexpr int kVocabulary = 4096;
constexpr int kTracked = 64;  // the most frequent words: which of them each message has is kept
constexpr size_t kTextBytes = 100;
constexpr size_t kLimit = 20;  // the server's default page, asked for explicitly

// SplitMix64: small, and the same sequence on every platform (std:: distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t s_;
};

// Message k belongs to room k mod R; a room's messages are sent in order, so within a room
// a higher k is a newer message.
class Corpus {
 public:
  Corpus(uint64_t messages, size_t rooms) : n_(messages), rooms_(rooms) {
    Rng rng(kSeed);
    std::set<std::string> seen;
    while (words_.size() < kVocabulary) {
      std::string w(3 + rng.Below(7), ' ');
      for (char& c : w) c = static_cast<char>('a' + rng.Below(26));
      // Tokens start with 'u' and no word does, so no word is ever some message's token.
      if (w[0] != 'u' && seen.insert(w).second) words_.push_back(std::move(w));
    }
    double sum = 0;
    for (int i = 0; i < kVocabulary; ++i) cdf_.push_back(sum += 1.0 / (i + 1));  // Zipf, s = 1
    for (double& c : cdf_) c /= sum;
    masks_.resize(n_);
    for (uint64_t k = 0; k < n_; ++k) {
      uint64_t m = 0;
      Words(k, [&](int rank) {
        if (rank < kTracked) m |= uint64_t{1} << rank;
      });
      masks_[k] = m;
    }
  }

  uint64_t size() const { return n_; }
  size_t rooms() const { return rooms_; }
  uint64_t CountIn(size_t room) const { return room < n_ ? (n_ - room + rooms_ - 1) / rooms_ : 0; }
  // The j-th message of `room`.
  uint64_t Message(size_t room, uint64_t j) const { return room + j * rooms_; }
  const std::string& Word(int rank) const { return words_[static_cast<size_t>(rank)]; }

  // "Word word … word u<k>x": the first word capitalized.
  std::string Text(uint64_t k) const {
    std::string t;
    t.reserve(kTextBytes + 24);
    Words(k, [&](int rank) { t += Word(rank) + ' '; });
    t[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(t[0])));
    return t + Token(k);
  }

  static std::string Token(uint64_t k) {
    char digits[16];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, k, 36);
    (void)ec;
    return "u" + std::string(digits, end) + "x";
  }

  // The room's messages holding every tracked word of `mask`, newest first: the first
  // `skip` left out, at most `max`.
  std::vector<uint64_t> Matches(size_t room, uint64_t mask, size_t skip, size_t max) const {
    std::vector<uint64_t> out;
    for (uint64_t j = CountIn(room); j-- > 0 && out.size() < max;) {
      uint64_t k = Message(room, j);
      if ((masks_[k] & mask) != mask) continue;
      if (skip > 0) {
        --skip;
      } else {
        out.push_back(k);
      }
    }
    return out;
  }

 private:
  // Calls fn(rank) for each word of message k's text, in order.
  template <typename Fn>
  void Words(uint64_t k, Fn&& fn) const {
    Rng rng(Rng(kSeed ^ k).Next());
    const size_t budget = kTextBytes - Token(k).size();
    for (size_t len = 0; len < budget;) {
      int rank = static_cast<int>(std::upper_bound(cdf_.begin(), cdf_.end(), rng.Unit()) - cdf_.begin());
      rank = std::min(rank, kVocabulary - 1);
      fn(rank);
      len += Word(rank).size() + 1;
    }
  }

  uint64_t n_;
  size_t rooms_;
  std::vector<std::string> words_;  // by rank, most frequent first
  std::vector<double> cdf_;
  std::vector<uint64_t> masks_;  // by message: bit r set if it has the word of rank r < kTracked
};

// ---- REST ----

// GET `path` with the bearer `token`. On 200 {"success":true,…} *doc holds the answer. An
// error's wire_code() is the answer's error code ("bad_request"), else "http N", or
// "transport" when no answer came.
Status GetJson(httplib::Client& c, const std::string& path, const std::string& token, json::Doc* doc) {
  httplib::Headers h{{"Authorization", "Bearer " + token}};
  auto res = c.Get(path.c_str(), h);
  if (!res) return Status(Code::kUnavailable, "GET " + path + ": " + httplib::to_string(res.error()), "transport");
  const bool parsed = json::Parse(res->body, doc).ok() && doc->IsObject();
  if (res->status == 200 && parsed) {
    auto s = doc->FindMember("success");
    if (s != doc->MemberEnd() && s->value.IsTrue()) return Status::Ok();
  }
  std::string code = "http " + std::to_string(res->status);
  std::string message = res->body.substr(0, 200);
  if (parsed && doc->HasMember("error") && (*doc)["error"].IsObject()) {
    const json::Value& e = (*doc)["error"];
    if (auto c2 = json::GetString(e, "code", 64); c2.ok()) code = std::string(*c2);
    if (auto m = json::GetString(e, "message", 0); m.ok()) message = std::string(*m);
  }
  return Status(res->status == 404 ? Code::kNotFound : Code::kInternal,
                "GET " + path + ": HTTP " + std::to_string(res->status) + " " + code + ": " + message, code);
}

// The answer's data.`key` array, or null.
const json::Value* DataArray(const json::Doc& doc, const char* key) {
  auto d = doc.FindMember("data");
  if (d == doc.MemberEnd() || !d->value.IsObject()) return nullptr;
  auto a = d->value.FindMember(key);
  return a != d->value.MemberEnd() && a->value.IsArray() ? &a->value : nullptr;
}

struct IndexState {
  uint64_t pos = 0;  // chatd_search_indexed_pos
  uint64_t lag = 0;  // chatd_search_lag
};

// The index's progress from GET /metrics; not_found when chatd does not export it.
Result<IndexState> PollIndex(httplib::Client& c) {
  auto res = c.Get("/metrics");
  if (!res) return Status(Code::kUnavailable, "GET /metrics: " + httplib::to_string(res.error()));
  if (res->status != 200) return Internal("GET /metrics: HTTP " + std::to_string(res->status));
  IndexState st;
  int found = 0;
  std::string_view body = res->body;
  while (!body.empty()) {
    size_t eol = body.find('\n');
    std::string_view line = body.substr(0, eol);
    body = eol == std::string_view::npos ? std::string_view() : body.substr(eol + 1);
    for (auto [name, out] : {std::pair{std::string_view("chatd_search_indexed_pos "), &st.pos},
                             std::pair{std::string_view("chatd_search_lag "), &st.lag}}) {
      if (line.substr(0, name.size()) != name) continue;
      *out = static_cast<uint64_t>(std::strtod(std::string(line.substr(name.size())).c_str(), nullptr));
      found++;
    }
  }
  if (found < 2) return NotFound("chatd exports no chatd_search_indexed_pos / chatd_search_lag");
  return st;
}

std::unique_ptr<httplib::Client> ApiClient(const Target& t) {
  auto c = std::make_unique<httplib::Client>("http://" + t.api);
  c->set_keep_alive(true);
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(30, 0);
  return c;
}

// ---- populating: message k to room k mod R, closed loop over WebSocket ----

class Populator final : public EngineHandler {
 public:
  Populator(const EngineOptions& eo, const Setup& setup, const Corpus& corpus, int window)
      : engine_(eo, this), setup_(setup), corpus_(corpus), window_(window), ids_(corpus.size(), 0) {
    for (size_t r = 0; r < setup.rooms.size(); ++r) {
      engine_.Add(setup.rooms[r].senders[0].token, static_cast<int32_t>(r), 0, 0);
    }
  }

  // Sends every message and waits for every acknowledgement; `tick` runs every 250 ms.
  Status Run(const std::function<void()>& tick) {
    int64_t t0 = MonoNs();
    while (engine_.ready() + engine_.counters().connect_failures < engine_.total()) {
      engine_.Poll(MonoNs() + 50'000'000);
      if (MonoNs() - t0 > 120'000'000'000) return Status(Code::kUnavailable, "populate: connections timed out");
    }
    if (engine_.counters().connect_failures) {
      return Status(Code::kUnavailable, "populate: connections failed: " + first_problem_);
    }
    for (const auto& c : engine_.conns()) {
      for (int w = 0; w < window_; ++w) SendNext(c.get());
    }
    int64_t last_tick = MonoNs(), last_ack = MonoNs();
    uint64_t acked_before = 0;
    while (acked_ < corpus_.size()) {
      engine_.Poll(MonoNs() + 20'000'000);
      if (!first_problem_.empty()) return Internal("populate: " + first_problem_);
      int64_t now = MonoNs();
      if (acked_ != acked_before) {
        acked_before = acked_;
        last_ack = now;
      } else if (now - last_ack > 30'000'000'000) {
        return Internal("populate: no acknowledgement for 30 s (" + std::to_string(acked_) + " of " +
                        std::to_string(corpus_.size()) + ")");
      }
      if (now - last_tick >= 250'000'000) {
        last_tick = now;
        tick();
      }
    }
    // Newest first means highest k first within a room: check the ids agree.
    for (size_t r = 0; r < corpus_.rooms(); ++r) {
      for (uint64_t j = 1; j < corpus_.CountIn(r); ++j) {
        if (ids_[corpus_.Message(r, j)] <= ids_[corpus_.Message(r, j - 1)]) {
          return Internal("populate: message ids do not increase in send order in chat " +
                          std::to_string(setup_.rooms[r].chat_id));
        }
      }
    }
    return Status::Ok();
  }

  uint64_t acked() const { return acked_; }
  uint64_t last_cursor() const { return last_cursor_; }
  uint64_t last_message() const { return last_k_; }  // the message with the highest cursor
  std::vector<uint64_t> TakeIds() { return std::move(ids_); }

  void OnReady(Conn*, int64_t) override {}
  void OnEvent(Conn* c, const ScannedEvent& ev, int64_t) override {
    if (ev.type == "message_sent") {
      std::string_view temp, id, cursor;
      uint64_t k = 0;
      if (!FindStringField(ev.body, "temp_id", &temp) || !FindStringField(ev.body, "message_id", &id) ||
          !FindStringField(ev.body, "cursor", &cursor) ||
          std::from_chars(temp.data(), temp.data() + temp.size(), k).ec != std::errc() || k >= ids_.size() ||
          !json::ParseId(id) || !json::ParseId(cursor)) {
        Problem("malformed message_sent: " + std::string(ev.body));
        return;
      }
      if (ev.body.find("\"duplicate\":true") != std::string_view::npos) {
        Problem("message " + std::string(temp) + " was already sent (a setup reused on the same relay?)");
        return;
      }
      ids_[k] = *json::ParseId(id);
      uint64_t pos = *json::ParseId(cursor);
      if (pos > last_cursor_) {
        last_cursor_ = pos;
        last_k_ = k;
      }
      acked_++;
      SendNext(c);
    } else if (ev.type == "error") {
      Problem("the relay refused a message: " + std::string(ev.body));
    }
  }
  void OnClosed(Conn*, std::string_view why) override { Problem("connection closed: " + std::string(why)); }

 private:
  void SendNext(Conn* c) {
    const size_t room = static_cast<size_t>(c->room);
    if (c->state != Conn::State::kReady || c->slot >= corpus_.CountIn(room)) return;
    uint64_t k = corpus_.Message(room, c->slot++);
    buf_ = R"({"type":"send_message","chat_id":")" + std::to_string(setup_.rooms[room].chat_id) +
           R"(","message_type":"text","content":")" + corpus_.Text(k) + R"(","temp_id":")" + std::to_string(k) + "\"}";
    engine_.SendText(c, buf_);
  }
  void Problem(std::string what) {
    if (first_problem_.empty()) first_problem_ = std::move(what);
  }

  Engine engine_;
  const Setup& setup_;
  const Corpus& corpus_;
  int window_;
  std::vector<uint64_t> ids_;  // message id by k
  uint64_t acked_ = 0, last_cursor_ = 0, last_k_ = 0;
  std::string buf_, first_problem_;
};

// ---- querying ----

struct Query {
  int kind = kSearchToken;
  size_t room = 0;
  const Member* member = nullptr;
  std::string text;  // q as typed
  std::string path;
  uint64_t k = 0;        // token: the message
  bool foreign = false;  // token: a message of another room, which must not be found
  uint64_t mask = 0;     // common, page: the words
  size_t skip = 0;       // page: matches before before_id
};

struct Tally {  // one client thread's
  std::array<uint64_t, kSearchKinds> sent{}, answered{}, wrong{};
  std::array<LatencyHistogram, kSearchKinds> latency;
  LatencyHistogram service;
  uint64_t errors = 0, skipped = 0, partial = 0;
  int64_t last_answer = 0;
  std::map<std::string, uint64_t> error_codes;
  std::string first_wrong, first_error;
};

class Querier {
 public:
  Querier(const Target& t, const Setup& setup, const Corpus& corpus, const std::vector<uint64_t>& ids)
      : target_(t), setup_(setup), corpus_(corpus), ids_(ids) {
    for (const Room& r : setup.rooms) {
      auto& m = members_.emplace_back();
      for (const Member& s : r.senders) m.push_back(&s);
      for (const Member& s : r.receivers) m.push_back(&s);
    }
  }

  // The schedule: query i is due at t0 + i * ns_per_query, for i < due; none is started
  // after stop_ns.
  void Plan(int64_t t0, double ns_per_query, uint64_t due, int64_t stop_ns) {
    t0_ = t0;
    ns_per_query_ = ns_per_query;
    due_ = due;
    stop_ns_ = stop_ns;
  }

  // A client thread's body: takes the next due query until none is left.
  void Client(Tally* t) {
    auto c = ApiClient(target_);
    json::Doc doc;
    for (;;) {
      uint64_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= due_) return;
      const int64_t due = t0_ + static_cast<int64_t>(static_cast<double>(i) * ns_per_query_);
      if (MonoNs() > stop_ns_) {  // too late: this one and every one not yet taken
        const uint64_t rest = next_.exchange(due_, std::memory_order_relaxed);
        t->skipped += 1 + (rest < due_ ? due_ - rest : 0);
        return;
      }
      Query q = Make(i);
      if (int64_t now = MonoNs(); due > now) std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
      t->sent[q.kind]++;
      const int64_t start = MonoNs();
      Status s = GetJson(*c, q.path, q.member->token, &doc);
      const int64_t end = MonoNs();
      if (!s.ok()) {
        t->errors++;
        t->error_codes[s.wire_code()]++;
        if (t->first_error.empty()) t->first_error = s.message();
        errors_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      t->answered[q.kind]++;
      t->latency[q.kind].Record(end - due);
      t->service.Record(end - start);
      t->last_answer = end;
      answered_.fetch_add(1, std::memory_order_relaxed);
      bool partial = false;
      if (std::string why = Check(q, doc, &partial); !why.empty()) {
        t->wrong[q.kind]++;
        if (t->first_wrong.empty()) t->first_wrong = why;
        wrong_.fetch_add(1, std::memory_order_relaxed);
      }
      t->partial += partial;
    }
  }

  uint64_t answered() const { return answered_.load(std::memory_order_relaxed); }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  uint64_t wrong() const { return wrong_.load(std::memory_order_relaxed); }

 private:
  // Query i: a random member of a random room; half token lookups, a quarter each common
  // words and their second page in the chat.
  Query Make(uint64_t i) const {
    Rng rng(Rng(kSeed ^ (i * 0x2545f4914f6cdd1dULL)).Next());
    Query q;
    q.room = rng.Below(setup_.rooms.size());
    const auto& members = members_[q.room];
    q.member = members[rng.Below(members.size())];
    const uint64_t pick = rng.Below(4);
    q.kind = pick < 2 ? kSearchToken : pick == 2 ? kSearchCommon : kSearchPage;
    std::string params;
    if (q.kind == kSearchToken) {
      size_t in = q.room;
      if (setup_.rooms.size() > 1 && rng.Below(8) == 0) {
        in = (q.room + 1 + rng.Below(setup_.rooms.size() - 1)) % setup_.rooms.size();
        q.foreign = true;
      }
      q.k = corpus_.Message(in, rng.Below(corpus_.CountIn(in)));
      q.text = Corpus::Token(q.k);
      if (rng.Below(2)) {
        for (char& ch : q.text) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      }
    } else {
      // One of the 16 most frequent words, or two: one of the 8 most frequent and one of
      // the next 56.
      int a = 0, b = -1;
      if (rng.Below(2)) {
        a = static_cast<int>(rng.Below(16));
      } else {
        a = static_cast<int>(rng.Below(8));
        b = 8 + static_cast<int>(rng.Below(kTracked - 8));
      }
      q.mask = uint64_t{1} << a;
      q.text = corpus_.Word(a);
      if (b >= 0) {
        q.mask |= uint64_t{1} << b;
        q.text += " " + corpus_.Word(b);
      }
      params = "&limit=" + std::to_string(kLimit);
      if (q.kind == kSearchPage) {
        params += "&chat_id=" + std::to_string(setup_.rooms[q.room].chat_id);
        auto last = corpus_.Matches(q.room, q.mask, kLimit - 1, 1);  // the first page's last
        if (!last.empty()) {
          q.skip = kLimit;
          params += "&before_id=" + std::to_string(ids_[last[0]]);
        }
      }
    }
    q.path = "/api/v1/search?q=" + httplib::detail::encode_query_param(q.text) + params;
    return q;
  }

  // "" if the answer is the one expected, else what is wrong with it. Without chat_id the
  // relay may stop after 5,000 candidates of all chats (docs/openapi.yaml): a partial page,
  // the start of the full one, with has_more; *partial is set then.
  std::string Check(const Query& q, const json::Doc& doc, bool* partial) const {
    const uint64_t chat = setup_.rooms[q.room].chat_id;
    std::string what = std::string(SearchKindName(q.kind)) + (q.foreign ? " (another chat's)" : "") + " \"" + q.text +
                       "\" by user " + std::to_string(q.member->user_id) + " (member of chat " + std::to_string(chat) +
                       ")";
    std::vector<uint64_t> want;
    bool want_more = false;
    if (q.kind == kSearchToken) {
      if (!q.foreign) want.push_back(q.k);
    } else {
      want = corpus_.Matches(q.room, q.mask, q.skip, kLimit + 1);
      want_more = want.size() > kLimit;
      want.resize(std::min(want.size(), kLimit));
    }
    const json::Value* results = DataArray(doc, "results");
    if (!results) return what + ": no data.results in the answer";
    auto more = json::GetBool(doc["data"], "has_more");  // DataArray found "data"
    if (!more.ok()) return what + ": no data.has_more in the answer";
    const bool may_stop = q.kind == kSearchCommon && *more;
    *partial = may_stop && results->Size() < want.size();
    if (results->Size() != want.size() && !*partial) {
      return what + ": " + std::to_string(results->Size()) + " results, expected " + std::to_string(want.size());
    }
    for (rapidjson::SizeType i = 0; i < results->Size(); ++i) {
      const json::Value& r = (*results)[i];
      auto id = json::GetId(r, "message_id");
      auto in = json::GetId(r, "chat_id");
      if (!id.ok() || !in.ok()) return what + ": result " + std::to_string(i) + " without message_id or chat_id";
      if (*in != chat) return what + ": result " + std::to_string(i) + " is from chat " + std::to_string(*in);
      if (*id != ids_[want[i]]) {
        return what + ": result " + std::to_string(i) + " is message " + std::to_string(*id) + ", expected " +
               std::to_string(ids_[want[i]]);
      }
    }
    if (q.kind == kSearchToken && !want.empty()) {
      auto content = json::GetString((*results)[0], "content", 0);
      if (!content.ok() || *content != corpus_.Text(q.k)) return what + ": the result's content differs";
    }
    if (*more != want_more && !may_stop) {
      return what + ": has_more " + (*more ? "true" : "false") + ", expected the opposite";
    }
    return "";
  }

  const Target& target_;
  const Setup& setup_;
  const Corpus& corpus_;
  const std::vector<uint64_t>& ids_;
  std::vector<std::vector<const Member*>> members_;  // by room
  int64_t t0_ = 0, stop_ns_ = 0;
  double ns_per_query_ = 0;
  uint64_t due_ = 0;
  std::atomic<uint64_t> next_{0}, answered_{0}, errors_{0}, wrong_{0};
};

// The rooms must be empty: the expected results assume they hold this run's messages only.
Status CheckEmpty(httplib::Client& c, const Setup& setup) {
  json::Doc doc;
  for (const Room& r : setup.rooms) {
    const std::string chat = std::to_string(r.chat_id);
    if (Status s = GetJson(c, "/api/v1/chats/" + chat + "/messages?limit=1", r.senders[0].token, &doc); !s.ok()) {
      return s;
    }
    const json::Value* messages = DataArray(doc, "messages");
    if (!messages) return Internal("GET /api/v1/chats/" + chat + "/messages: no data.messages");
    if (!messages->Empty()) {
      return BadRequest("chat " + chat +
                        " already holds messages (a setup file reused on the same relay?): search needs a "
                        "relay whose rooms are empty, such as a fresh copy");
    }
  }
  return Status::Ok();
}

Result<EngineOptions> GatewayOptions(const Target& t, const SearchConfig& cfg) {
  EngineOptions eo;
  std::string host;
  int port = 0;
  if (!ParseHostPort(t.gateway, &host, &port)) return BadRequest("bad gateway address " + t.gateway);
  eo.gateway.sin_family = AF_INET;
  eo.gateway.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &eo.gateway.sin_addr) != 1) {
    return BadRequest("the gateway must be an IPv4 address");
  }
  eo.host = t.gateway;
  eo.sources = LoopbackSources(cfg.sources);
  eo.max_connecting = cfg.max_connecting;
  return eo;
}

struct Written {
  std::vector<uint64_t> ids;  // message id by k
  uint64_t last_k = 0;        // the message with the highest cursor
  int64_t t_start = 0, t_done = 0;
};

// Step 1: writes the corpus, sampling the index's lag (`admin` is set when chatd exports it).
Result<Written> Populate(const Target& target, const Setup& setup, const Corpus& corpus, const SearchConfig& cfg,
                         httplib::Client* admin, SearchResult* r) {
  auto eo = GatewayOptions(target, cfg);
  if (!eo.ok()) return eo.status();
  Written out;
  out.t_start = MonoNs();
  Populator pop(*eo, setup, corpus, cfg.window);
  Status s = pop.Run([&] {
    std::string lag;
    if (auto st = admin ? PollIndex(*admin) : Result<IndexState>(NotFound("")); st.ok()) {
      r->max_lag = std::max(r->max_lag, st->lag);
      lag = ", index lag " + std::to_string(st->lag);
    }
    if (cfg.progress) {
      const double secs = static_cast<double>(MonoNs() - out.t_start) / 1e9;
      ProgressLine("search: writing " + std::to_string(pop.acked()) + "/" + std::to_string(cfg.messages) + " (" +
                   Si(static_cast<double>(pop.acked()) / secs) + "/s)" + lag);
    }
  });
  if (!s.ok()) return s;
  out.t_done = MonoNs();
  r->populate_s = static_cast<double>(out.t_done - out.t_start) / 1e9;
  r->last_cursor = pop.last_cursor();
  out.last_k = pop.last_message();
  out.ids = pop.TakeIds();
  return out;
}

// Step 2: waits until the index holds the last message: chatd's metrics, or without them a
// search for that message's token.
Status AwaitIndex(httplib::Client& admin, const Setup& setup, const Written& w, const SearchConfig& cfg,
                  SearchResult* r) {
  const size_t room = w.last_k % setup.rooms.size();
  const std::string probe = "/api/v1/search?q=" + Corpus::Token(w.last_k);
  const int64_t deadline = w.t_done + static_cast<int64_t>(cfg.index_timeout_s * 1e9);
  int64_t last_print = 0;
  json::Doc doc;
  for (bool first = true;; first = false) {
    bool caught_up = false;
    uint64_t lag = 0;
    if (r->index_metrics) {
      auto st = PollIndex(admin);
      if (!st.ok()) return st.status();
      lag = std::max(st->lag, st->pos < r->last_cursor ? r->last_cursor - st->pos : 0);
      caught_up = st->lag == 0 && st->pos >= r->last_cursor;
    } else {
      Status q = GetJson(admin, probe, setup.rooms[room].senders[0].token, &doc);
      if (!q.ok()) return Status(q.code(), "waiting for the index: " + q.message());
      const json::Value* results = DataArray(doc, "results");
      caught_up = results && results->Size() == 1 && json::GetId((*results)[0], "message_id").ok() &&
                  *json::GetId((*results)[0], "message_id") == w.ids[w.last_k];
    }
    if (first) r->lag_at_populated = lag;
    const int64_t now = MonoNs();
    if (caught_up) {
      r->catchup_s = static_cast<double>(now - w.t_done) / 1e9;
      r->indexed_s = static_cast<double>(now - w.t_start) / 1e9;
      return Status::Ok();
    }
    if (now > deadline) {
      return Internal("the search index did not catch up within " + Fixed(cfg.index_timeout_s, 0) + " s" +
                      (r->index_metrics ? " (" + std::to_string(lag) + " positions behind)" : ""));
    }
    if (cfg.progress && now - last_print >= 250'000'000) {
      last_print = now;
      ProgressLine("search: waiting for the index" +
                   (r->index_metrics ? ", " + std::to_string(lag) + " positions behind" : ""));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(r->index_metrics ? 10 : 20));
  }
}

// Step 3: the open-loop queries.
void RunQueries(const Target& target, const Setup& setup, const Corpus& corpus, const std::vector<uint64_t>& ids,
                const SearchConfig& cfg, SearchResult* r) {
  Querier querier(target, setup, corpus, ids);
  r->due = std::max<uint64_t>(1, static_cast<uint64_t>(cfg.duration_s * cfg.rate));
  const int64_t t0 = MonoNs() + 50'000'000;
  const int64_t t_end = t0 + static_cast<int64_t>(cfg.duration_s * 1e9);
  querier.Plan(t0, 1e9 / cfg.rate, r->due, t_end + static_cast<int64_t>(cfg.drain_s * 1e9));
  std::vector<Tally> tallies(static_cast<size_t>(cfg.clients));
  std::atomic<int> running{cfg.clients};
  std::vector<std::thread> threads;
  for (Tally& t : tallies) {
    threads.emplace_back([&querier, &running, t = &t] {
      querier.Client(t);
      running.fetch_sub(1);
    });
  }
  uint64_t last_answered = 0;
  int64_t last_print = MonoNs();
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const int64_t now = MonoNs();
    if (cfg.progress && now - last_print >= 1'000'000'000) {
      const uint64_t a = querier.answered();
      ProcSample p = SampleProc(target.pid);
      ProgressLine("search: " + std::to_string(a) + "/" + std::to_string(r->due) + " queries answered (" +
                   Si(static_cast<double>(a - last_answered) * 1e9 / static_cast<double>(now - last_print)) + "/s), " +
                   std::to_string(querier.errors()) + " errors, " + std::to_string(querier.wrong()) + " wrong" +
                   (p.ok ? " | server " + Fixed(p.rss_kb / 1024.0, 1) + " MB" : ""));
      last_answered = a;
      last_print = now;
    }
  }
  for (auto& th : threads) th.join();
  int64_t last_answer = t_end;
  for (const Tally& t : tallies) {
    for (int k = 0; k < kSearchKinds; ++k) {
      r->sent[k] += t.sent[k];
      r->answered[k] += t.answered[k];
      r->wrong[k] += t.wrong[k];
      r->latency[k].Merge(t.latency[k]);
      r->all.Merge(t.latency[k]);
    }
    r->service.Merge(t.service);
    r->errors += t.errors;
    r->skipped += t.skipped;
    r->partial += t.partial;
    for (const auto& [code, n] : t.error_codes) r->error_codes[code] += n;
    if (r->first_wrong.empty()) r->first_wrong = t.first_wrong;
    if (r->first_error.empty()) r->first_error = t.first_error;
    last_answer = std::max(last_answer, t.last_answer);
  }
  r->seconds = static_cast<double>(last_answer - t0) / 1e9;
}

}  // namespace

Result<SearchResult> RunSearch(const Target& target, const Setup& setup, const SearchConfig& cfg) {
  if (setup.rooms.empty()) return BadRequest("search: no rooms");
  if (cfg.messages < setup.rooms.size()) return BadRequest("search: --messages must be at least --rooms");
  for (const Room& room : setup.rooms) {
    if (room.senders.empty()) return BadRequest("search: a room without a sender");
  }
  auto admin = ApiClient(target);  // /metrics and the checks; closed before the queries
  if (Status s = CheckEmpty(*admin, setup); !s.ok()) return s;
  SearchResult r;
  r.messages = cfg.messages;
  auto index = PollIndex(*admin);
  if (!index.ok() && index.status().code() != Code::kNotFound) return index.status();
  r.index_metrics = index.ok();
  const Corpus corpus(cfg.messages, setup.rooms.size());
  auto clear = [&](Status s) {
    if (cfg.progress) ProgressLine("");
    return s;
  };

  const ProcSample p0 = SampleProc(target.pid);
  auto written = Populate(target, setup, corpus, cfg, r.index_metrics ? admin.get() : nullptr, &r);
  if (!written.ok()) return clear(written.status());
  const ProcSample p1 = SampleProc(target.pid);
  if (Status s = AwaitIndex(*admin, setup, *written, cfg, &r); !s.ok()) return clear(s);
  const ProcSample p2 = SampleProc(target.pid);
  admin.reset();  // an idle keep-alive connection would hold one of the API's threads
  r.rss_before_kb = p0.rss_kb;
  r.rss_indexed_kb = p2.rss_kb;
  r.populate_server_cpu_s = p0.ok && p1.ok ? p1.cpu_s - p0.cpu_s : 0;
  r.catchup_server_cpu_s = p1.ok && p2.ok ? p2.cpu_s - p1.cpu_s : 0;

  const double g0 = SelfCpuSeconds(), m0 = MachineBusySeconds();
  RunQueries(target, setup, corpus, written->ids, cfg, &r);
  if (cfg.progress) ProgressLine("");
  const ProcSample q1 = SampleProc(target.pid);
  const double g1 = SelfCpuSeconds(), m1 = MachineBusySeconds();
  r.server_cpu_s = p2.ok && q1.ok ? q1.cpu_s - p2.cpu_s : 0;
  r.gen_cpu_s = g1 - g0;
  r.other_cpu_s = std::max(0.0, (m1 - m0) - r.server_cpu_s - r.gen_cpu_s);
  r.rss_end_kb = q1.rss_kb;
  r.hwm_kb = q1.hwm_kb;
  return r;
}

void PrintSearch(const Header& h, const SearchConfig& cfg, const SearchResult& r, bool json) {
  const double n = static_cast<double>(r.messages);
  const double answered = static_cast<double>(r.total_answered());
  const double per_s = r.seconds > 0 ? answered / r.seconds : 0;
  const bool sustained = per_s >= 0.95 * cfg.rate && r.skipped == 0;
  const double backlog = static_cast<double>(r.lag_at_populated);
  const double us_per_query = answered > 0 ? r.server_cpu_s * 1e6 / answered : 0;
  const double secs = r.seconds > 0 ? r.seconds : 1;
  if (json) {
    rapidjson::StringBuffer buf;
    JsonOut w(buf);
    w.StartObject();
    WriteHeader(w, h);
    w.Key("populate");
    w.StartObject();
    Kv(w, "messages", r.messages);
    Kv(w, "window", static_cast<int64_t>(cfg.window));
    Kv(w, "seconds", r.populate_s);
    Kv(w, "msgs_per_s", r.populate_s > 0 ? n / r.populate_s : 0);
    Kv(w, "server_cpu_s", r.populate_server_cpu_s);
    Kv(w, "server_us_per_message", n > 0 ? r.populate_server_cpu_s * 1e6 / n : 0);
    Kv(w, "last_cursor", r.last_cursor);
    w.EndObject();
    w.Key("index");
    w.StartObject();
    Kv(w, "metrics", r.index_metrics);
    Kv(w, "lag_at_populated", r.lag_at_populated);
    Kv(w, "max_lag_while_populating", r.max_lag);
    Kv(w, "catchup_s", r.catchup_s);
    Kv(w, "catchup_positions_per_s", r.catchup_s > 0 ? backlog / r.catchup_s : 0);
    Kv(w, "catchup_server_cpu_s", r.catchup_server_cpu_s);
    Kv(w, "indexed_s", r.indexed_s);
    Kv(w, "msgs_per_s_overall", r.indexed_s > 0 ? n / r.indexed_s : 0);
    w.EndObject();
    w.Key("queries");
    w.StartObject();
    Kv(w, "offered_per_s", cfg.rate);
    Kv(w, "duration_s", cfg.duration_s);
    Kv(w, "clients", static_cast<int64_t>(cfg.clients));
    Kv(w, "due", r.due);
    Kv(w, "sent", r.total_sent());
    Kv(w, "answered", r.total_answered());
    Kv(w, "skipped", r.skipped);
    Kv(w, "errors", r.errors);
    Kv(w, "wrong", r.total_wrong());
    Kv(w, "partial_pages", r.partial);
    Kv(w, "seconds", r.seconds);
    Kv(w, "answered_per_s", per_s);
    Kv(w, "sustained", sustained);
    WriteHist(w, "latency", r.all);
    WriteHist(w, "service", r.service);
    w.Key("kinds");
    w.StartArray();
    for (int k = 0; k < kSearchKinds; ++k) {
      w.StartObject();
      Kv(w, "name", std::string(SearchKindName(k)));
      Kv(w, "sent", r.sent[k]);
      Kv(w, "answered", r.answered[k]);
      Kv(w, "wrong", r.wrong[k]);
      WriteHist(w, "latency", r.latency[k]);
      w.EndObject();
    }
    w.EndArray();
    w.Key("error_codes");
    w.StartObject();
    for (const auto& [code, count] : r.error_codes) Kv(w, code.c_str(), count);
    w.EndObject();
    Kv(w, "first_error", r.first_error);
    Kv(w, "first_wrong", r.first_wrong);
    w.EndObject();
    Kv(w, "server_cpu_s", r.server_cpu_s);
    Kv(w, "server_cpu_pct", 100 * r.server_cpu_s / secs);
    Kv(w, "server_us_per_query", us_per_query);
    Kv(w, "generator_cpu_pct", 100 * r.gen_cpu_s / secs);
    Kv(w, "other_processes_cpu_pct", 100 * r.other_cpu_s / secs);
    Kv(w, "server_rss_before_kb", static_cast<int64_t>(r.rss_before_kb));
    Kv(w, "server_rss_indexed_kb", static_cast<int64_t>(r.rss_indexed_kb));
    Kv(w, "server_rss_end_kb", static_cast<int64_t>(r.rss_end_kb));
    Kv(w, "server_hwm_kb", static_cast<int64_t>(r.hwm_kb));
    w.EndObject();
    printf("%s\n", buf.GetString());
    return;
  }
  PrintHeaderText(h);
  printf("\n  populated  %llu messages in %.2fs (%s/s, window %d per room); server CPU %.2fs (%.1f us/message)\n",
         static_cast<unsigned long long>(r.messages), r.populate_s, Si(r.populate_s > 0 ? n / r.populate_s : 0).c_str(),
         cfg.window, r.populate_server_cpu_s, n > 0 ? r.populate_server_cpu_s * 1e6 / n : 0);
  if (r.index_metrics) {
    printf(
        "  indexed    caught up %s after the last ack (%llu positions behind then, %s/s; most behind while "
        "populating %llu)\n",
        Dur(static_cast<int64_t>(r.catchup_s * 1e9)).c_str(), static_cast<unsigned long long>(r.lag_at_populated),
        Si(r.catchup_s > 0 ? backlog / r.catchup_s : 0).c_str(), static_cast<unsigned long long>(r.max_lag));
  } else {
    printf("  indexed    the last message found %s after its ack (no chatd_search_* metrics)\n",
           Dur(static_cast<int64_t>(r.catchup_s * 1e9)).c_str());
  }
  printf("             all %llu in %.2fs from the first send: %s/s; server CPU while catching up %.2fs\n",
         static_cast<unsigned long long>(r.messages), r.indexed_s, Si(r.indexed_s > 0 ? n / r.indexed_s : 0).c_str(),
         r.catchup_server_cpu_s);
  printf("  server RSS %.1f MB before, %.1f MB indexed, %.1f MB after the queries (peak %.1f MB)\n\n",
         r.rss_before_kb / 1024.0, r.rss_indexed_kb / 1024.0, r.rss_end_kb / 1024.0, r.hwm_kb / 1024.0);
  printf(
      "  queries    %s/s offered for %.0fs over %d clients: %llu due, %llu answered in %.2fs (%s/s), %llu errors, "
      "%llu wrong, %llu skipped: %s\n",
      Si(cfg.rate).c_str(), cfg.duration_s, cfg.clients, static_cast<unsigned long long>(r.due),
      static_cast<unsigned long long>(r.total_answered()), r.seconds, Si(per_s).c_str(),
      static_cast<unsigned long long>(r.errors), static_cast<unsigned long long>(r.total_wrong()),
      static_cast<unsigned long long>(r.skipped), sustained ? "sustained" : "NOT sustained");
  printf("\n  %-8s %8s %6s %8s %8s %8s %8s\n", "kind", "answered", "wrong", "p50", "p99", "p99.9", "max");
  auto row = [](const char* name, uint64_t count, uint64_t wrong, const LatencyHistogram& hist) {
    printf("  %-8s %8llu %6llu %8s %8s %8s %8s\n", name, static_cast<unsigned long long>(count),
           static_cast<unsigned long long>(wrong), Dur(hist.Percentile(0.5)).c_str(),
           Dur(hist.Percentile(0.99)).c_str(), Dur(hist.Percentile(0.999)).c_str(), Dur(hist.max()).c_str());
  };
  for (int k = 0; k < kSearchKinds; ++k) row(SearchKindName(k), r.answered[k], r.wrong[k], r.latency[k]);
  row("all", r.total_answered(), r.total_wrong(), r.all);
  printf("  (latency from each query's due time; the server's answer alone: p50 %s, p99 %s)\n\n",
         Dur(r.service.Percentile(0.5)).c_str(), Dur(r.service.Percentile(0.99)).c_str());
  if (r.partial) {
    printf("  %llu common-word pages were partial (the relay's scan budget), with has_more\n",
           static_cast<unsigned long long>(r.partial));
  }
  printf("  CPU        server %.0f%% (%.0f us/query); generator %.0f%%, other processes %.0f%%\n",
         100 * r.server_cpu_s / secs, us_per_query, 100 * r.gen_cpu_s / secs, 100 * r.other_cpu_s / secs);
  for (const auto& [code, count] : r.error_codes) {
    printf("  errors: %s x%llu\n", code.c_str(), static_cast<unsigned long long>(count));
  }
  if (!r.first_error.empty()) printf("  first error: %s\n", r.first_error.c_str());
  if (!r.first_wrong.empty()) printf("  first wrong: %s\n", r.first_wrong.c_str());
}

}  // namespace chatd::cli::bench
