// The XMPP-over-WebSocket client engine of `chatctl bench xmpp`, on the shared room-traffic
// driver (bench_room_traffic.h). See bench_xmpp.h.
#include "cli/bench_xmpp.h"

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "base/time.h"
#include "cli/bench_engine.h"
#include "cli/bench_proc.h"
#include "cli/bench_room_traffic.h"
#include "cli/bench_scan.h"
#include "cli/bench_ws.h"

namespace chatd::cli::bench {

namespace {

// ---- XMPP stanzas (RFC 6120, RFC 7395 framing, XEP-0045) ----

constexpr size_t kMaxFrame = 1u << 20;  // largest WebSocket message accepted from the server

// The name of a frame's top-level element: "message", "stream:features", "open".
std::string_view ElementName(std::string_view x) {
  size_t i = x.find('<');
  if (i == std::string_view::npos) return {};
  size_t j = i + 1;
  while (j < x.size() && x[j] != ' ' && x[j] != '\t' && x[j] != '\r' && x[j] != '\n' && x[j] != '/' && x[j] != '>') ++j;
  return x.substr(i + 1, j - i - 1);
}

// The raw value of attribute `name` of the frame's first start tag.
bool Attr(std::string_view x, std::string_view name, std::string_view* value) {
  std::string_view tag = x.substr(0, x.find('>'));
  for (size_t pos = tag.find(name); pos != std::string_view::npos; pos = tag.find(name, pos + 1)) {
    size_t eq = pos + name.size();
    if (pos == 0 || eq + 1 >= tag.size() || tag[eq] != '=') continue;
    char before = tag[pos - 1];
    char q = tag[eq + 1];
    if ((before != ' ' && before != '\t' && before != '\r' && before != '\n') || (q != '\'' && q != '"')) continue;
    size_t end = tag.find(q, eq + 2);
    if (end == std::string_view::npos) return false;
    *value = tag.substr(eq + 2, end - eq - 2);
    return true;
  }
  return false;
}

bool AttrIs(std::string_view x, std::string_view name, std::string_view want) {
  std::string_view v;
  return Attr(x, name, &v) && v == want;
}

// A MUC status code (<status code='110'/>) anywhere in the stanza.
bool HasStatus(std::string_view x, std::string_view code) {
  std::string a = "code='" + std::string(code) + "'";
  std::string b = "code=\"" + std::string(code) + "\"";
  return x.find(a) != std::string_view::npos || x.find(b) != std::string_view::npos;
}

// The text of the first <body> element (raw, entities not decoded).
bool Body(std::string_view x, std::string_view* body) {
  for (size_t b = x.find("<body"); b != std::string_view::npos; b = x.find("<body", b + 5)) {
    if (b + 5 >= x.size() || (x[b + 5] != '>' && x[b + 5] != ' ')) continue;  // <bodyx>
    size_t gt = x.find('>', b);
    if (gt == std::string_view::npos) return false;
    if (x[gt - 1] == '/') {
      *body = {};
      return true;
    }
    size_t end = x.find("</body>", gt);
    if (end == std::string_view::npos) return false;
    *body = x.substr(gt + 1, end - gt - 1);
    return true;
  }
  return false;
}

// The defined condition of an error stanza or SASL failure: the first child element of
// <error> (or of the failure itself), e.g. "not-authorized", "item-not-found".
std::string Condition(std::string_view x) {
  size_t e = x.find("<error");
  size_t from = e == std::string_view::npos ? x.find('>') : x.find('>', e);
  if (from == std::string_view::npos) return "unknown";
  std::string_view rest = x.substr(from + 1);
  std::string_view name = ElementName(rest);
  return name.empty() || name[0] == '/' ? "unknown" : std::string(name.substr(0, 64));
}

// A stanza's attribute value safe to put back into XML as written: our own ids and JIDs
// have no quotes or entities; anything else is refused.
bool PlainAttr(std::string_view v) {
  if (v.size() > 256) return false;
  for (char c : v) {
    if (c == '\'' || c == '"' || c == '<' || c == '>' || c == '&') return false;
  }
  return true;
}

// ---- the engine ----

// Handshake stages (RoomConn::State).
enum XmppStage : uint8_t {
  kUpgrading = RoomConn::kHandshake,
  kFeatures,   // sent <open/>, waiting for the SASL mechanisms
  kAuth,       // sent <auth/>, waiting for <success/>
  kRestart,    // sent <open/> again, waiting for the bind feature
  kBind,       // sent the bind iq
  kSession,    // sent the session iq
  kRoomWait,   // a member bound before its room exists: waiting for the publisher
  kJoin,       // sent the join presence, waiting for our own presence (110)
  kConfigure,  // a publisher that created its room: sent the instant-room form
};

struct XConn : RoomConn {
  bool session_required = false;
  uint8_t frag_opcode = 0;
  uint32_t user = 0;
  std::string key;   // Sec-WebSocket-Key until the upgrade
  std::string frag;  // a fragmented message being assembled
};

class XmppBench : public RoomTraffic {
 public:
  explicit XmppBench(const XmppConfig& cfg) : RoomTraffic(cfg, "xmpp", "server"), cfg_(cfg) {}

  // Opens every connection and joins every room; an error unless all of them joined.
  Status Connect(TrafficResult* res, XmppJoin* join);

 private:
  void OnConnected(RoomConn* c) override;
  void Input(RoomConn* c, const char* data, size_t len, int64_t now) override;
  bool Send(RoomConn* p, uint64_t seq, std::string_view content) override;
  void OnClosed(RoomConn* c) override { static_cast<XConn*>(c)->frag.clear(); }
  std::string ConnectingLine() const override;

  void OnStanza(XConn* c, std::string_view x, int64_t now);
  void OnIq(XConn* c, std::string_view x);
  void OnPresence(XConn* c, std::string_view x);
  void OnMessage(XConn* c, std::string_view x, int64_t now);
  void SendXml(XConn* c, std::string_view xml);
  void SendOpen(XConn* c);
  void Join(XConn* c);
  void Ready(XConn* c);
  void OnEcho(XConn* p, std::string_view body, int64_t now);
  std::string RoomJid(uint32_t room) const { return "r" + std::to_string(room) + "@" + muc_; }
  std::string UserName(uint32_t user) const { return cfg_.user_prefix + std::to_string(user); }

  const XmppConfig& cfg_;
  std::string muc_;
  MaskKeys masks_;
  std::string xml_;
  // Rooms whose publisher has joined (and configured them); members bound before that.
  std::vector<bool> room_open_;
  std::vector<std::vector<XConn*>> room_waiting_;
  size_t bound_ = 0;
  int64_t t_last_bound_ = 0;
};

Status XmppBench::Connect(TrafficResult* res, XmppJoin* join) {
  if (Status s = Open(cfg_.server); !s.ok()) return s;
  for (const std::string* s : {&cfg_.domain, &cfg_.muc, &cfg_.user_prefix, &cfg_.password, &cfg_.path}) {
    if (!PlainAttr(*s) || s->find_first_of(" \r\n") != std::string::npos) {
      return BadRequest("--domain, --muc, --user-prefix, --password and --path must be plain text: " + *s);
    }
  }
  muc_ = cfg_.muc.empty() ? "conference." + cfg_.domain : cfg_.muc;
  room_open_.assign(static_cast<size_t>(cfg_.rooms), false);
  room_waiting_.resize(static_cast<size_t>(cfg_.rooms));
  // Publishers first: each creates its room before the members join it.
  for (int pass = 0; pass < 2; ++pass) {
    for (int r = 0; r < cfg_.rooms; ++r) {
      for (int m = 0; m < (pass ? cfg_.members : 1); ++m) {
        auto c = std::make_unique<XConn>();
        c->user = static_cast<uint32_t>(r * (cfg_.members + 1) + (pass ? 1 + m : 0));
        Add(std::move(c), static_cast<uint32_t>(r), pass == 0);
      }
    }
  }
  join->connections = static_cast<int>(conns_.size());
  Status s = ConnectAll(res, "did not join");
  join->bound = static_cast<int>(bound_);
  join->joined = static_cast<int>(ready_);
  join->bound_s = bound_ ? static_cast<double>(t_last_bound_ - t_connect_) / 1e9 : 0;
  join->joined_s = res->connect_s;
  if (!s.ok()) return s;
  // Let the presence broadcasts of the last joins finish before sampling the RSS.
  while (MonoNs() < t_connected_ + 1'000'000'000) Poll(t_connected_ + 1'000'000'000);
  join->rss_joined_kb = SampleProc(cfg_.pid).rss_kb;
  StartProgress();
  return Status::Ok();
}

std::string XmppBench::ConnectingLine() const {
  return "connecting: " + std::to_string(bound_) + " bound, " + std::to_string(ready_) + "/" +
         std::to_string(conns_.size()) + " joined";
}

void XmppBench::OnConnected(RoomConn* rc) {
  auto* c = static_cast<XConn*>(rc);
  c->key = NewWsKey((static_cast<uint64_t>(c->index) << 20) ^ static_cast<uint64_t>(MonoNs()));
  c->out = UpgradeRequest(cfg_.domain, cfg_.path, c->key);
  c->out.insert(c->out.size() - 2, "Sec-WebSocket-Protocol: xmpp\r\n");  // before the blank line
  c->out_off = 0;
  c->state = kUpgrading;
}

void XmppBench::Input(RoomConn* rc, const char* data, size_t len, int64_t now) {
  auto* c = static_cast<XConn*>(rc);
  c->rx.append(data, len);
  if (c->state == kUpgrading) {
    std::string error;
    HttpHead h = ReadUpgradeResponse(&c->rx, &c->key, &error);
    if (h == HttpHead::kError) Fail(c, error, true);
    if (h != HttpHead::kComplete) return;
    c->state = kFeatures;
    SendOpen(c);
  }
  WsRead r = ReadServerFrames(c->rx.data(), c->rx.size(), kMaxFrame, /*close_text=*/false, &c->frag, &c->frag_opcode,
                              &c->out, &masks_, &counters_, [&](std::string_view x) {
                                OnStanza(c, x, now);
                                return c->state != RoomConn::kClosed;
                              });
  if (r.answered) Touch(c);
  if (r.closed) Flush(c);
  if (!r.why.empty()) Fail(c, r.why, true);
  if (c->state == RoomConn::kClosed) {
    c->rx.clear();
    c->rx.shrink_to_fit();
  } else {
    c->rx.erase(0, r.used);
  }
}

void XmppBench::OnStanza(XConn* c, std::string_view x, int64_t now) {
  std::string_view name = ElementName(x);
  if (name == "message") {
    OnMessage(c, x, now);
  } else if (name == "presence") {
    OnPresence(c, x);
  } else if (name == "iq") {
    OnIq(c, x);
  } else if (name == "open") {
    // The server's stream header: its features follow.
  } else if (name == "stream:features" || name == "features") {
    if (c->state == kFeatures) {
      if (x.find("PLAIN") == std::string_view::npos) {
        Fail(c, "the server offers no SASL PLAIN", true);
        return;
      }
      std::string cred;
      cred.push_back('\0');
      cred += UserName(c->user);
      cred.push_back('\0');
      cred += cfg_.password;
      SendXml(c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
                     Base64(reinterpret_cast<const unsigned char*>(cred.data()), cred.size()) + "</auth>");
      c->state = kAuth;
    } else if (c->state == kRestart) {
      if (x.find("urn:ietf:params:xml:ns:xmpp-bind") == std::string_view::npos) {
        Fail(c, "the server offers no resource binding", true);
        return;
      }
      size_t s = x.find("urn:ietf:params:xml:ns:xmpp-session");
      if (s != std::string_view::npos) {
        size_t end = x.find("</session>", s);
        size_t opt = x.find("<optional", s);
        c->session_required = end != std::string_view::npos && (opt == std::string_view::npos || opt > end);
      }
      SendXml(c,
              "<iq xmlns='jabber:client' type='set' id='bind'><bind "
              "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource>"
              "</bind></iq>");
      c->state = kBind;
    }
  } else if (name == "success") {
    if (c->state != kAuth) return;
    c->state = kRestart;
    SendOpen(c);
  } else if (name == "failure") {
    Fail(c, "authentication failed: " + Condition(x), true);
  } else if (name == "close" || name == "stream:error") {
    Fail(c, "the server closed the stream: " + std::string(name) + " " + Condition(x), true);
  }
}

void XmppBench::OnIq(XConn* c, std::string_view x) {
  std::string_view type, id;
  Attr(x, "type", &type);
  Attr(x, "id", &id);
  if (type == "get" || type == "set") {  // e.g. a server ping: answer, never leave it waiting
    std::string_view from;
    if (!PlainAttr(id) || (Attr(x, "from", &from) && !PlainAttr(from))) return;
    xml_ = "<iq xmlns='jabber:client' type='result' id='" + std::string(id) + "'";
    if (!from.empty()) xml_ += " to='" + std::string(from) + "'";
    SendXml(c, xml_ + "/>");
    return;
  }
  if (type == "error") {
    if (c->state == kBind || c->state == kSession || c->state == kConfigure) {
      Fail(c, "iq " + std::string(id.substr(0, 16)) + " refused: " + Condition(x), true);
    } else {
      errors_["iq_error"]++;
    }
    return;
  }
  if (type != "result") return;
  if (c->state == kBind && id == "bind") {
    if (c->session_required) {
      SendXml(
          c,
          "<iq xmlns='jabber:client' type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
      c->state = kSession;
      return;
    }
  } else if (c->state == kSession && id == "sess") {
  } else if (c->state == kConfigure && id == "cfg") {
    Ready(c);
    return;
  } else {
    return;
  }
  // Bound (and in session).
  bound_++;
  t_last_bound_ = MonoNs();
  if (c->publisher || room_open_[c->room]) {
    Join(c);
  } else {
    c->state = kRoomWait;
    room_waiting_[c->room].push_back(c);
  }
}

void XmppBench::Join(XConn* c) {
  SendXml(c, "<presence xmlns='jabber:client' to='" + RoomJid(c->room) + "/" + UserName(c->user) +
                 "'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>");
  c->state = kJoin;
}

void XmppBench::OnPresence(XConn* c, std::string_view x) {
  if (c->state != kJoin) return;  // other occupants coming and going
  std::string_view from;
  if (!Attr(x, "from", &from) || from != RoomJid(c->room) + "/" + UserName(c->user)) return;
  if (AttrIs(x, "type", "error")) {
    Fail(c, "join refused: " + Condition(x), true);
    return;
  }
  if (AttrIs(x, "type", "unavailable")) {
    Fail(c, "removed from the room while joining", true);
    return;
  }
  if (!HasStatus(x, "110")) return;
  if (c->publisher && HasStatus(x, "201")) {
    // We created the room: accept the default configuration (an instant room, XEP-0045
    // 10.1.2), which unlocks it where the server keeps new rooms locked until configured.
    SendXml(c, "<iq xmlns='jabber:client' type='set' id='cfg' to='" + RoomJid(c->room) +
                   "'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/>"
                   "</query></iq>");
    c->state = kConfigure;
    return;
  }
  Ready(c);
}

void XmppBench::Ready(XConn* c) {
  MarkReady(c);
  if (!c->publisher) return;
  room_open_[c->room] = true;
  for (XConn* m : room_waiting_[c->room]) {
    if (m->state == kRoomWait) Join(m);
  }
  room_waiting_[c->room].clear();
  room_waiting_[c->room].shrink_to_fit();
}

void XmppBench::OnMessage(XConn* c, std::string_view x, int64_t now) {
  if (c->state != RoomConn::kReady) return;  // the room's subject while joining
  counters_.events++;
  if (AttrIs(x, "type", "error")) {
    errors_["message_error_" + Condition(x)]++;
    return;
  }
  std::string_view body;
  if (!AttrIs(x, "type", "groupchat") || !Body(x, &body)) return;  // subject, chat states
  if (c->publisher) {
    OnEcho(c, body, now);
  } else {
    Deliver(c, body, now);
  }
}

void XmppBench::SendOpen(XConn* c) {
  SendXml(c, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='" + cfg_.domain + "' version='1.0'/>");
}

void XmppBench::SendXml(XConn* c, std::string_view xml) {
  if (c->state == RoomConn::kClosed) return;
  AppendFrame(&c->out, kWsText, xml, masks_.Next());
  Touch(c);
}

// ---- traffic ----

bool XmppBench::Send(RoomConn* p, uint64_t seq, std::string_view content) {
  xml_ = "<message xmlns='jabber:client' to='" + RoomJid(p->room) + "' type='groupchat'><body>";
  xml_ += content;
  xml_ += "</body></message>";
  SendXml(static_cast<XConn*>(p), xml_);
  return true;
}

void XmppBench::OnEcho(XConn* p, std::string_view body, int64_t now) {
  Stamp stamp;
  if (!DecodeContent(body, &stamp) || stamp.sender != p->room || stamp.seq >= p->sent.size()) {
    errors_["unexpected_echo"]++;
    return;
  }
  if (p->sent[stamp.seq].done) {
    errors_["duplicate_echo"]++;
    return;
  }
  Ack(p, stamp.seq, now);
}

}  // namespace

Result<TrafficResult> RunXmpp(const XmppConfig& cfg, XmppJoin* join) {
  if (Status s = CheckRoomShape(cfg); !s.ok()) return s;
  TrafficResult res;
  res.server_rss_before_kb = SampleProc(cfg.pid).rss_kb;
  join->rss_before_kb = res.server_rss_before_kb;
  auto bench = std::make_unique<XmppBench>(cfg);
  if (Status s = bench->Connect(&res, join); !s.ok()) return s;
  bench->RunSteps(&res);
  return res;
}

}  // namespace chatd::cli::bench
