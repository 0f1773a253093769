// The MQTT 3.1.1 client engine of `chatctl bench mqtt`, on the shared room-traffic driver
// (bench_room_traffic.h). See bench_mqtt.h.
#include "cli/bench_mqtt.h"

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "cli/bench_proc.h"
#include "cli/bench_room_traffic.h"

namespace chatd::cli::bench {

namespace {

// ---- MQTT 3.1.1 wire format (OASIS standard, sections 2 and 3) ----

enum PacketType : uint8_t { kConnect = 1, kConnack = 2, kPublish = 3, kPuback = 4, kSubscribe = 8, kSuback = 9 };

constexpr size_t kMaxPacket = 1u << 20;  // largest packet accepted from the broker
constexpr uint16_t kSubscribeId = 1;
constexpr uint32_t kPacketIds = 65535;  // packet ids are 1..65535

void PutU16(std::string* out, size_t v) {
  out->push_back(static_cast<char>((v >> 8) & 0xff));
  out->push_back(static_cast<char>(v & 0xff));
}

void PutStr(std::string* out, std::string_view s) {
  PutU16(out, s.size());
  out->append(s);
}

// The fixed header: type and flags, then the remaining length as a base-128 varint.
void PutHeader(std::string* out, uint8_t type, uint8_t flags, size_t remaining) {
  out->push_back(static_cast<char>(type << 4 | flags));
  do {
    auto b = static_cast<uint8_t>(remaining & 0x7f);
    remaining >>= 7;
    if (remaining) b |= 0x80;
    out->push_back(static_cast<char>(b));
  } while (remaining);
}

uint16_t GetU16(std::string_view s, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) << 8 | static_cast<uint8_t>(s[at + 1]));
}

// Protocol "MQTT" level 4, clean session, keep-alive off.
void AppendConnect(std::string* out, std::string_view client_id) {
  PutHeader(out, kConnect, 0, 10 + 2 + client_id.size());
  PutStr(out, "MQTT");
  out->push_back(4);
  out->push_back(0x02);
  PutU16(out, 0);
  PutStr(out, client_id);
}

void AppendSubscribe(std::string* out, std::string_view topic, int qos) {
  PutHeader(out, kSubscribe, 0x2, 2 + 2 + topic.size() + 1);
  PutU16(out, kSubscribeId);
  PutStr(out, topic);
  out->push_back(static_cast<char>(qos));
}

void AppendPublish(std::string* out, std::string_view topic, int qos, uint16_t id, std::string_view payload) {
  PutHeader(out, kPublish, static_cast<uint8_t>(qos << 1), 2 + topic.size() + (qos ? 2 : 0) + payload.size());
  PutStr(out, topic);
  if (qos) PutU16(out, id);
  out->append(payload);
}

void AppendPuback(std::string* out, uint16_t id) {
  PutHeader(out, kPuback, 0, 2);
  PutU16(out, id);
}

struct Packet {
  uint8_t type = 0, flags = 0;
  std::string_view body;  // the variable header and payload
};

enum class Decode { kPacket, kNeedMore, kError };

// Decodes the packet at the start of [data, data+len); *used is its length.
Decode DecodePacket(const char* data, size_t len, Packet* p, size_t* used) {
  size_t remaining = 0, i = 1;
  for (int shift = 0;; shift += 7, ++i) {
    if (i >= len) return Decode::kNeedMore;
    if (i > 4) return Decode::kError;  // a remaining length has at most 4 bytes
    auto b = static_cast<uint8_t>(data[i]);
    remaining |= static_cast<size_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  ++i;
  if (remaining > kMaxPacket) return Decode::kError;
  if (len - i < remaining) return Decode::kNeedMore;
  p->type = static_cast<uint8_t>(data[0]) >> 4;
  p->flags = static_cast<uint8_t>(data[0]) & 0x0f;
  p->body = std::string_view(data + i, remaining);
  *used = i + remaining;
  return Decode::kPacket;
}

// ---- the engine ----

// Handshake stages (RoomConn::State).
enum MqttStage : uint8_t { kAwaitConnack = RoomConn::kHandshake, kAwaitSuback };

struct MConn : RoomConn {
  std::string topic;
  // A publisher's packet ids: message `seq` is id seq % 65535 + 1, and a QoS 1 broker
  // acknowledges in order (MQTT 3.1.1, 4.6).
  uint64_t unacked_from = 0;  // lowest sequence number not yet acknowledged
};

class MqttBench : public RoomTraffic {
 public:
  explicit MqttBench(const MqttConfig& cfg) : RoomTraffic(cfg, "mqtt", "broker"), cfg_(cfg) {
    acked_when_written_ = cfg.qos == 0;  // nothing comes back: written is acknowledged
  }

  // Opens every connection; an error unless all of them are ready.
  Status Connect(TrafficResult* res);

 private:
  void OnConnected(RoomConn* c) override { c->state = kAwaitConnack; }  // the CONNECT is queued
  void Input(RoomConn* c, const char* data, size_t len, int64_t now) override;
  bool Send(RoomConn* p, uint64_t seq, std::string_view content) override;
  void OnPacket(MConn* c, const Packet& p, int64_t now);
  void OnPuback(MConn* p, uint16_t id, int64_t now);

  const MqttConfig& cfg_;
};

Status MqttBench::Connect(TrafficResult* res) {
  if (Status s = Open(cfg_.broker); !s.ok()) return s;
  // Subscribers first, so every room is listening before its publisher connects.
  std::string prefix = "bm" + std::to_string(getpid()) + "-";
  for (int pass = 0; pass < 2; ++pass) {
    for (int r = 0; r < cfg_.rooms; ++r) {
      for (int m = 0; m < (pass ? 1 : cfg_.members); ++m) {
        auto c = std::make_unique<MConn>();
        c->topic = "room/" + std::to_string(r);
        std::string id = prefix + (pass ? "p" : "s") + std::to_string(r) + (pass ? "" : "-" + std::to_string(m));
        AppendConnect(&c->out, id);
        Add(std::move(c), static_cast<uint32_t>(r), pass == 1);
      }
    }
  }
  Status s = ConnectAll(res, "failed");
  StartProgress();
  return s;
}

void MqttBench::Input(RoomConn* rc, const char* data, size_t len, int64_t now) {
  auto* c = static_cast<MConn*>(rc);
  c->rx.append(data, len);
  size_t pos = 0;
  while (c->state != RoomConn::kClosed) {
    Packet p;
    size_t used = 0;
    Decode d = DecodePacket(c->rx.data() + pos, c->rx.size() - pos, &p, &used);
    if (d == Decode::kNeedMore) break;
    if (d == Decode::kError) {
      Fail(c, "malformed packet from the broker", true);
      break;
    }
    pos += used;
    counters_.frames_in++;
    OnPacket(c, p, now);
  }
  c->rx.erase(0, c->state == RoomConn::kClosed ? c->rx.size() : pos);
}

void MqttBench::OnPacket(MConn* c, const Packet& p, int64_t now) {
  switch (p.type) {
    case kConnack:
      if (c->state != kAwaitConnack || p.body.size() < 2) {
        Fail(c, "unexpected CONNACK", true);
      } else if (p.body[1] != 0) {
        Fail(c, "connection refused (CONNACK code " + std::to_string(static_cast<uint8_t>(p.body[1])) + ")", true);
      } else if (c->publisher) {
        MarkReady(c);
      } else {
        c->state = kAwaitSuback;
        AppendSubscribe(&c->out, c->topic, cfg_.qos);
        Touch(c);
      }
      break;
    case kSuback:
      if (c->state != kAwaitSuback || p.body.size() < 3 || GetU16(p.body, 0) != kSubscribeId) {
        Fail(c, "unexpected SUBACK", true);
      } else if (static_cast<uint8_t>(p.body[2]) == 0x80) {
        Fail(c, "subscription refused", true);
      } else {
        MarkReady(c);
      }
      break;
    case kPublish: {
      int qos = (p.flags >> 1) & 3;
      size_t topic_len = p.body.size() >= 2 ? GetU16(p.body, 0) : SIZE_MAX;
      size_t payload_at = topic_len == SIZE_MAX ? SIZE_MAX : 2 + topic_len + (qos ? 2 : 0);
      if (qos > 1 || payload_at > p.body.size()) {
        Fail(c, qos > 1 ? "QoS 2 PUBLISH (never subscribed for)" : "malformed PUBLISH", true);
        break;
      }
      counters_.events++;
      if (qos == 1) {
        AppendPuback(&c->out, GetU16(p.body, 2 + topic_len));
        Touch(c);
      }
      if (!c->publisher && c->state == RoomConn::kReady) Deliver(c, p.body.substr(payload_at), now);
      break;
    }
    case kPuback:
      if (c->publisher && p.body.size() >= 2) OnPuback(c, GetU16(p.body, 0), now);
      break;
    default:
      break;  // PINGRESP, UNSUBACK: not expected, ignored
  }
}

// ---- traffic ----

bool MqttBench::Send(RoomConn* rc, uint64_t seq, std::string_view content) {
  auto* p = static_cast<MConn*>(rc);
  if (cfg_.qos == 1 && seq - p->unacked_from >= kPacketIds) {
    errors_["no_free_packet_id"]++;
    return false;
  }
  AppendPublish(&p->out, p->topic, cfg_.qos, static_cast<uint16_t>(seq % kPacketIds + 1), content);
  Touch(p);
  return true;
}

void MqttBench::OnPuback(MConn* p, uint16_t id, int64_t now) {
  // The one unacknowledged message that packet id `id` can name.
  uint64_t base = p->unacked_from;
  uint64_t seq = base + (id + 2 * kPacketIds - 1 - base % kPacketIds) % kPacketIds;
  if (id == 0 || seq >= p->sent.size() || p->sent[seq].done) {
    errors_["unexpected_puback"]++;
    return;
  }
  Ack(p, seq, now);
  while (p->unacked_from < p->sent.size() && p->sent[p->unacked_from].done) p->unacked_from++;
}

}  // namespace

Result<TrafficResult> RunMqtt(const MqttConfig& cfg) {
  if (Status s = CheckRoomShape(cfg); !s.ok()) return s;
  if (cfg.qos != 0 && cfg.qos != 1) return BadRequest("--qos must be 0 or 1");
  TrafficResult res;
  res.server_rss_before_kb = SampleProc(cfg.pid).rss_kb;
  auto bench = std::make_unique<MqttBench>(cfg);
  if (Status s = bench->Connect(&res); !s.ok()) return s;
  bench->RunSteps(&res);
  return res;
}

}  // namespace chatd::cli::bench
