// Gateway: the lws context, its thread, the inbox and fan-out. Frame handling is in
// relay/session.cpp.
#include "relay/gateway.h"

#include <uv.h>

#include <libwebsockets.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "relay/session.h"

namespace chatd {

namespace {

struct Pss {
  Session* session;
};

void LwsLog(int level, const char* line) {
  std::string msg(line);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  if (level & LLL_ERR) log::Error("lws", {{"detail", msg}});
  else log::Warn("lws", {{"detail", msg}});
}

void IgnoreSignal(void*, int) {}

// A WebSocket ping (FIN, opcode 9) with a one-byte payload: lws 4.1 does not report a pong
// with an empty payload (LWS_CALLBACK_RECEIVE_PONG), and the pong is what keeps a session.
constexpr unsigned char kPingFrame[] = {0x89, 0x01, 'p'};

lws_protocols g_protocols[] = {
    {"chatd", nullptr, sizeof(Pss), 0, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

// Federation links go to the gateway's Federation object (relay/federation.cpp).
int FederationCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto* gw = static_cast<Gateway*>(lws_context_user(lws_get_context(wsi)));
  if (!gw) return lws_callback_http_dummy(wsi, reason, user, in, len);
  return gw->FederationCallback(wsi, static_cast<int>(reason), in, len);
}

lws_protocols g_fed_protocols[] = {
    {"chatd-federation", FederationCallback, 0, 65536, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

// Port 0 means "any free port": lws treats 0 as "no listener", so find one first.
int ResolvePort(const conf::HostPort& hp) {
  if (hp.port != 0) return hp.port;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, hp.host == "localhost" ? "127.0.0.1" : hp.host.c_str(), &a.sin_addr);
  socklen_t alen = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &alen) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

Status Gateway::CreateVhost(const char* name, const conf::HostPort& hp, lws_protocols* protocols,
                            const lws_retry_bo_t* retry, lws_vhost** out, int* port) {
  lws_context_creation_info vi;
  memset(&vi, 0, sizeof vi);
  vi.vhost_name = name;
  vi.port = ResolvePort(hp);
  if (vi.port <= 0) return Status(Code::kIo, std::string(name) + ": cannot find a free port on " + hp.host);
  vi.iface = hp.host.c_str();
  vi.protocols = protocols;
  vi.retry_and_idle_policy = retry;
  vi.timeout_secs = 20;
  vi.options = LWS_SERVER_OPTION_LIBUV;
  *out = lws_create_vhost(context_, &vi);
  if (!*out) return Status(Code::kIo, std::string(name) + ": cannot listen on " + hp.ToString());
  *port = lws_get_vhost_listen_port(*out);
  if (*port <= 0) *port = vi.port;
  return Status::Ok();
}

Gateway::Gateway(const conf::Config& cfg, Core& core, TokenService& tokens, Workers& workers,
                 uint64_t initial_cursor)
    : cfg_(cfg), core_(core), tokens_(tokens), workers_(workers), last_cursor_(initial_cursor), keys_(tokens) {
  initial_peers_ = cfg.peers;
}

void Gateway::SetPeers(std::vector<conf::Peer> peers) {
  auto shared = std::make_shared<std::vector<conf::Peer>>(std::move(peers));
  Post([this, shared] {
    if (federation_) federation_->SetPeers(*shared);
  });
}

std::string Gateway::FederationStatus() {
  auto p = std::make_shared<std::promise<std::string>>();
  auto f = p->get_future();
  Post([this, p] { p->set_value(federation_ ? federation_->StatusJson() : "{}"); });
  if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return "{}";
  return f.get();
}

Gateway::~Gateway() { Stop(); }

Status Gateway::Start() {
  std::promise<Status> started;
  auto fut = started.get_future();
  thread_ = std::thread([this, &started] { Run(&started); });
  Status s = fut.get();
  if (!s.ok()) {
    thread_.join();
  }
  return s;
}

int Gateway::Callback(lws* wsi, int reason_int, void* user, void* in, size_t len) {
  auto reason = static_cast<lws_callback_reasons>(reason_int);
  lws_context* ctx = lws_get_context(wsi);
  auto* gw = static_cast<Gateway*>(lws_context_user(ctx));
  auto* pss = static_cast<Pss*>(user);
  switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
      if (gw) gw->RunInbox();
      return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
      char uri[64];
      int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
      if (n <= 0 || strcmp(uri, "/ws") != 0) return 1;
      if (gw->draining_) return 1;
      if (gw->sessions_.size() >= static_cast<size_t>(gw->cfg_.max_connections)) {
        log::Warn("gateway: connection limit reached", {{"limit", gw->cfg_.max_connections}});
        return 1;
      }
      return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
      gw->OnOpen(wsi, &pss->session);
      return 0;
    case LWS_CALLBACK_RECEIVE:
      if (!pss->session) return -1;
      gw->Touch(pss->session);
      gw->OnReceive(pss->session, static_cast<const char*>(in), len, lws_is_first_fragment(wsi),
                    lws_is_final_fragment(wsi), lws_frame_is_binary(wsi));
      return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
      if (pss && pss->session) gw->Touch(pss->session);
      return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
      if (!pss->session) return -1;
      return gw->OnWriteable(pss->session);
    case LWS_CALLBACK_CLOSED:
      if (pss && pss->session) {
        gw->OnClosed(pss->session);
        pss->session = nullptr;
      }
      return 0;
    case LWS_CALLBACK_HTTP:
      // Plain HTTP on the gateway port: the WebSocket lives at /ws; the REST API elsewhere.
      lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "use a WebSocket at /ws");
      return -1;
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

void Gateway::Run(std::promise<Status>* started) {
  pthread_setname_np(pthread_self(), "chatd-gateway");
  lws_set_log_level(LLL_ERR | LLL_WARN, LwsLog);
  g_protocols[0].callback = [](lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
    return Gateway::Callback(wsi, static_cast<int>(reason), user, in, len);
  };
  g_protocols[0].rx_buffer_size = static_cast<size_t>(cfg_.rx_buffer_bytes);
  // With tx_packet_size 0, lws caps every send() at rx_buffer_size (1 KiB by default) and
  // keeps the rest of a write, draining it 1 KiB per POLLOUT: a 20 KiB fan-out write was
  // 20 send()s and 40 epoll_ctl. One send() per write instead (up to WriteQueued's 256 KiB;
  // a limit only: lws allocates nothing per connection for it).
  g_protocols[0].tx_packet_size = 256 * 1024 + 16;
  // Client sessions: lws' validity timers off (both 0); the gateway's timing wheel pings
  // and hangs up instead (see Sweep). Federation links are few and keep lws' timers.
  static lws_retry_bo_t client_retry{};
  client_retry.secs_since_valid_ping = 0;
  client_retry.secs_since_valid_hangup = 0;
  static lws_retry_bo_t retry{};
  retry.secs_since_valid_ping = static_cast<uint16_t>(cfg_.ping_interval_s);
  retry.secs_since_valid_hangup = static_cast<uint16_t>(std::min(cfg_.idle_timeout_s, 65535));
  lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
                 LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.user = this;
  info.signal_cb = IgnoreSignal;
  info.timeout_secs = 20;
  // We own the libuv loop (lws runs on it as a "foreign" loop) so we can stop it.
  uv_loop_init(&loop_);
  void* foreign_loops[] = {&loop_};
  info.foreign_loops = foreign_loops;
  context_ = lws_create_context(&info);
  if (!context_) {
    started->set_value(Status(Code::kIo, "gateway: cannot create the libwebsockets context"));
    return;
  }
  // Client sessions on listen.gateway; peer links on listen.federation.
  Status s = CreateVhost("gateway", cfg_.gateway, g_protocols, &client_retry, &vhost_, &port_);
  if (s.ok()) s = CreateVhost("federation", cfg_.federation, g_fed_protocols, &retry, &fed_vhost_, &fed_port_);
  if (!s.ok()) {
    lws_context_destroy(context_);
    context_ = nullptr;
    started->set_value(s);
    return;
  }
  federation_ = std::make_unique<Federation>(cfg_, core_, keys_, workers_, [this](std::function<void()> fn) {
    Post(std::move(fn));
  });
  federation_->SetPeers(initial_peers_);
  federation_->Start(context_, fed_vhost_, &loop_);
  wheel_base_ms_ = uv_now(&loop_);
  wheel_tick_ = 0;
  uv_timer_init(&loop_, &liveness_timer_);
  liveness_timer_.data = this;
  uv_timer_start(
      &liveness_timer_, [](uv_timer_t* t) { static_cast<Gateway*>(t->data)->Sweep(); }, 1000, 1000);
  // Last thing in each loop pass before it waits for I/O: write what this pass queued.
  uv_prepare_init(&loop_, &flush_prep_);
  flush_prep_.data = this;
  uv_prepare_start(&flush_prep_, [](uv_prepare_t* h) { static_cast<Gateway*>(h->data)->FlushDirty(); });
  hold_ms_ = static_cast<uint64_t>(cfg_.write_hold_ms);
  hold_above_ = static_cast<uint64_t>(cfg_.write_hold_above);
  busy_ = hold_above_ == 0;
  uv_timer_init(&loop_, &hold_timer_);
  hold_timer_.data = this;
  started->set_value(Status::Ok());
  while (!exit_loop_) uv_run(&loop_, UV_RUN_DEFAULT);
  uv_timer_stop(&liveness_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&liveness_timer_), nullptr);
  uv_prepare_stop(&flush_prep_);
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_prep_), nullptr);
  uv_timer_stop(&hold_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&hold_timer_), nullptr);
  dirty_.clear();
  for (auto& slot : held_) slot.clear();
  held_count_ = 0;
  exit_promise_.set_value();
  for (auto& [id, sess] : sessions_) delete sess;
  sessions_.clear();
  for (auto& slot : wheel_) slot = nullptr;
  by_user_.clear();
  lws_context_destroy(context_);
  context_ = nullptr;
  federation_.reset();
  // Let lws' handles finish closing, then release the loop.
  for (int i = 0; i < 1000 && uv_loop_close(&loop_) == UV_EBUSY; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
}

void Gateway::ExitLoop() {
  // lws_service() runs the libuv loop until it is stopped; stop it so Run() can return.
  exit_loop_ = true;
  uv_stop(&loop_);
}

void Gateway::Post(Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    inbox_.push_back(std::move(task));
  }
  if (context_) lws_cancel_service(context_);
}

void Gateway::RunInbox() {
  std::vector<Task> tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(inbox_);
  }
  for (auto& t : tasks) t();
}

void Gateway::Deliver(std::vector<Delivery>&& batch) {
  auto shared = std::make_shared<std::vector<Delivery>>(std::move(batch));
  Post([this, shared] { ApplyDeliveries(*shared); });
}

void Gateway::ApplyDeliveries(std::vector<Delivery>& batch) {
  for (Delivery& d : batch) {
    if (d.cursor > last_cursor_) last_cursor_ = d.cursor;
    switch (d.type) {
      case Delivery::Type::kSession: {
        auto it = sessions_.find(d.session_id);
        if (it != sessions_.end()) Enqueue(it->second, d.frame, d.cursor);
        break;
      }
      case Delivery::Type::kUsers:
        for (uint64_t uid : *d.users) {
          auto it = by_user_.find(uid);
          if (it == by_user_.end()) continue;
          for (Session* s : it->second) {
            if (s->id != d.session_id) Enqueue(s, d.frame, d.cursor);
          }
        }
        break;
      case Delivery::Type::kReplicate:
        if (federation_) federation_->Offer(d.envelope);
        break;
      case Delivery::Type::kEphemeral:
        if (federation_) federation_->SendEphemeral(d.chat_id, d.user_id, d.frame_json);
        break;
      case Delivery::Type::kCloseUserDevice: {
        auto it = by_user_.find(d.user_id);
        if (it == by_user_.end()) break;
        for (Session* s : it->second) {
          if (d.device_id == 0 || s->device_id == d.device_id) CloseSession(s, 1008, "logged out");
        }
        break;
      }
    }
  }
}

void Gateway::Enqueue(Session* s, const Frame& frame, uint64_t cursor) {
  if (s->close_code) return;
  // Durable events at or below live_from are fetched by sync, not sent live; those at or
  // below synced_upto were sent by a sync already.
  if (cursor && (cursor <= s->live_from || cursor <= s->synced_upto)) return;
  size_t cap = static_cast<size_t>(cfg_.session_queue_bytes);
  if (s->syncing && cursor) {
    s->held.push_back({frame, cursor});
  } else {
    s->out.push_back({frame, cursor});
    if (hold_ms_) {
      RecentFrames(s, uv_now(&loop_));
      s->window_frames++;
    }
    RequestWrite(s);
  }
  s->out_bytes += frame->size();
  if (s->out_bytes > cap) {
    stats_.slow_consumers++;
    log::Warn("gateway: slow consumer disconnected", {{"session", s->id}, {"queued_bytes", s->out_bytes}});
    s->out.clear();
    s->held.clear();
    s->out_head = 0;
    s->out_bytes = 0;
    CloseSession(s, 1008, "slow consumer: reconnect and sync from your cursor");
  }
}

uint32_t Gateway::RecentFrames(Session* s, uint64_t now) const {
  if (now - s->rate_window_ms >= hold_ms_) {  // a new window; the last one ended now
    s->prev_window_frames = now - s->rate_window_ms < 2 * hold_ms_ ? s->window_frames : 0;
    s->window_frames = 0;
    s->rate_window_ms = now;
  }
  return s->prev_window_frames;
}

void Gateway::RequestWrite(Session* s) {
  // Frames queued during this loop pass go out together at its end (FlushDirty), written
  // directly: asking lws for WRITEABLE costs two poll changes and a loop pass per write.
  if (s->want_write || s->dirty) return;
  s->dirty = true;
  dirty_.push_back(s->id);
}

void Gateway::WantWriteable(Session* s) {
  if (s->want_write) return;
  s->want_write = true;
  lws_callback_on_writable(s->wsi);
}

void Gateway::FlushDirty() {
  const uint64_t now = uv_now(&loop_);
  if (hold_ms_ && hold_above_) {
    // Busy: the frames written over the last ~100 ms, as a rate.
    const uint64_t frames = stats_.frames_out.load(std::memory_order_relaxed);
    if (now - busy_window_ms_ >= 100) {
      busy_ = (frames - busy_window_frames_) * 1000 >= hold_above_ * (now - busy_window_ms_);
      busy_window_ms_ = now;
      busy_window_frames_ = frames;
    }
  }
  if (dirty_.empty()) return;
  std::vector<uint64_t> ids;
  ids.swap(dirty_);
  uint64_t first_due = 0;
  for (uint64_t id : ids) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;  // closed meanwhile
    Session* s = it->second;
    if (s->want_write) {  // the WRITEABLE callback writes it
      s->dirty = false;
      continue;
    }
    // Held only when it pays: the session got at least kHoldMinFrames frames in the last
    // whole window of hold_ms_ (one that gets a frame every 20 ms would only wait).
    if (hold_ms_ && busy_ && !s->close_code && now < s->last_write_ms + hold_ms_ &&
        RecentFrames(s, now) >= kHoldMinFrames) {
      const uint64_t due = s->last_write_ms + hold_ms_;
      if (!first_due || due < first_due) first_due = due;
      if (!held_count_) held_swept_ms_ = now;
      held_[due % kHoldSlots].push_back(id);  // stays dirty: nothing is added until released
      held_count_++;
      continue;
    }
    s->dirty = false;
    // A close frame goes out from the callback (which then hangs up); so does anything
    // behind bytes lws still holds from a partial write (they must leave first).
    if (s->close_code || lws_partial_buffered(s->wsi)) {
      WantWriteable(s);
      continue;
    }
    if (!WriteQueued(s)) {
      lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);  // the socket is gone
      continue;
    }
    s->last_write_ms = now;
    if (s->out_head < s->out.size()) WantWriteable(s);
  }
  if (first_due && (!hold_timer_due_ || first_due < hold_timer_due_)) ArmHoldTimer(first_due, now);
}

void Gateway::ArmHoldTimer(uint64_t due, uint64_t now) {
  hold_timer_due_ = due;
  uv_timer_start(
      &hold_timer_, [](uv_timer_t* t) { static_cast<Gateway*>(t->data)->ReleaseHeld(); }, due > now ? due - now : 0, 0);
}

void Gateway::ReleaseHeld() {
  const uint64_t now = uv_now(&loop_);
  hold_timer_due_ = 0;
  // Every slot from the last sweep up to now (at most one lap: a session waits < hold_ms_).
  const uint64_t from = std::max(held_swept_ms_ + 1, now >= kHoldSlots ? now - kHoldSlots + 1 : 0);
  for (uint64_t t = from; t <= now && held_count_; ++t) {
    std::vector<uint64_t>& slot = held_[t % kHoldSlots];
    held_count_ -= slot.size();
    dirty_.insert(dirty_.end(), slot.begin(), slot.end());  // still dirty: written at this pass's end
    slot.clear();
  }
  held_swept_ms_ = now;
  if (!held_count_) return;
  for (uint64_t t = now + 1; t <= now + kHoldSlots; ++t) {
    if (!held_[t % kHoldSlots].empty()) {
      ArmHoldTimer(t, now);
      return;
    }
  }
}

int Gateway::OnWriteable(Session* s) {
  s->want_write = false;
  if (s->close_code && (!s->close_after_flush || s->out_head >= s->out.size())) {
    // Our frames go out raw, so the close frame does too: code + reason, then hang up.
    size_t rlen = std::min<size_t>(strlen(s->close_reason), 123);
    unsigned char frame[LWS_PRE + 4 + 125];
    unsigned char* f = frame + LWS_PRE;
    f[0] = 0x88;
    f[1] = static_cast<unsigned char>(2 + rlen);
    f[2] = static_cast<unsigned char>(s->close_code >> 8);
    f[3] = static_cast<unsigned char>(s->close_code & 0xff);
    memcpy(f + 4, s->close_reason, rlen);
    lws_write(s->wsi, f, 4 + rlen, LWS_WRITE_RAW);
    return -1;
  }
  if (!WriteQueued(s)) return -1;
  if (s->out_head < s->out.size() || s->close_code) WantWriteable(s);
  return 0;
}

bool Gateway::WriteQueued(Session* s) {
  // A ping is a small control frame, sent between whole frames.
  size_t ping = s->ping_pending ? sizeof kPingFrame : 0;
  s->ping_pending = false;
  if (s->out_head >= s->out.size() && !ping) return true;
  constexpr size_t kMaxWrite = 256 * 1024;
  size_t total = 0, end = s->out_head;
  while (end < s->out.size() && (total == 0 || total + s->out[end].frame->size() <= kMaxWrite)) {
    total += s->out[end].frame->size();
    ++end;
  }
  if (scratch_.size() < LWS_PRE + ping + total) scratch_.resize(LWS_PRE + ping + total);
  unsigned char* p = scratch_.data() + LWS_PRE;
  if (ping) {
    memcpy(p, kPingFrame, sizeof kPingFrame);
    p += sizeof kPingFrame;
  }
  for (size_t i = s->out_head; i < end; ++i) {
    memcpy(p, s->out[i].frame->data(), s->out[i].frame->size());
    p += s->out[i].frame->size();
  }
  // lws keeps whatever the socket does not take and sends it before anything later.
  int n = lws_write(s->wsi, scratch_.data() + LWS_PRE, ping + total, LWS_WRITE_RAW);
  if (n < 0) return false;
  stats_.writes++;
  stats_.frames_out += end - s->out_head;
  stats_.bytes_out += total;
  s->out_bytes -= std::min(s->out_bytes, total);
  for (size_t i = s->out_head; i < end; ++i) s->out[i].frame.reset();
  s->out_head = end;
  if (s->out_head >= s->out.size()) {
    s->out.clear();
    if (s->out.capacity() > 64) s->out.shrink_to_fit();
    s->out_head = 0;
  }
  if (s->sync_waiting && s->out_bytes < static_cast<size_t>(cfg_.session_queue_bytes) / 4) {
    s->sync_waiting = false;
    RequestSyncPage(s);
  }
  return true;
}

void Gateway::CloseSession(Session* s, int code, const char* reason) {
  if (s->close_code) return;
  s->close_code = static_cast<uint16_t>(code);
  s->close_reason = reason;
  // A session held by write coalescing goes now, not when its hold ends (its id stays in
  // the hold ring too; a second visit to a closing session only finds want_write set).
  if (s->dirty && !s->want_write) dirty_.push_back(s->id);
  RequestWrite(s);
  // A peer that reads nothing never lets the close frame out: hang up after a grace period.
  Schedule(s, NowTick() + kCloseGraceS);
}

// ---- liveness: a timing wheel of one-second slots, swept by one 1 s timer ----

uint32_t Gateway::NowTick() const {
  return static_cast<uint32_t>((uv_now(const_cast<uv_loop_t*>(&loop_)) - wheel_base_ms_) / 1000);
}

void Gateway::Touch(Session* s) { s->last_rx = NowTick(); }

void Gateway::Schedule(Session* s, uint32_t due) {
  Unschedule(s);
  if (due <= wheel_tick_) due = wheel_tick_ + 1;  // the next sweep
  s->due = due;
  uint32_t slot = due % kWheelSlots;
  s->wheel_slot = static_cast<int32_t>(slot);
  s->wheel_prev = nullptr;
  s->wheel_next = wheel_[slot];
  if (wheel_[slot]) wheel_[slot]->wheel_prev = s;
  wheel_[slot] = s;
}

void Gateway::Unschedule(Session* s) {
  if (s->wheel_slot < 0) return;
  if (s->wheel_prev)
    s->wheel_prev->wheel_next = s->wheel_next;
  else
    wheel_[s->wheel_slot] = s->wheel_next;
  if (s->wheel_next) s->wheel_next->wheel_prev = s->wheel_prev;
  s->wheel_prev = s->wheel_next = nullptr;
  s->wheel_slot = -1;
}

void Gateway::Sweep() {
  uint32_t now = NowTick();
  // After a stall longer than the wheel, one lap visits every slot (and every session due).
  if (now - wheel_tick_ > kWheelSlots) wheel_tick_ = now - kWheelSlots;
  while (wheel_tick_ < now) {
    ++wheel_tick_;
    uint32_t slot = wheel_tick_ % kWheelSlots;
    Session* s = wheel_[slot];
    wheel_[slot] = nullptr;
    while (s) {
      Session* next = s->wheel_next;
      s->wheel_prev = s->wheel_next = nullptr;
      s->wheel_slot = -1;
      if (s->due > wheel_tick_)
        Schedule(s, s->due);  // due on a later lap of the wheel
      else
        CheckLiveness(s, wheel_tick_);
      s = next;
    }
  }
}

void Gateway::SendPing(Session* s) {
  // Goes out ahead of the session's next write, like any queued frame: written directly at
  // the end of this loop pass (no WRITEABLE round trip for an idle session).
  s->ping_pending = true;
  RequestWrite(s);
}

void Gateway::CheckLiveness(Session* s, uint32_t now) {
  if (s->close_code) {
    // The close frame could not go out within the grace period: drop the connection.
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    return;
  }
  if (!s->authed) {
    uint32_t deadline = s->opened + static_cast<uint32_t>(cfg_.auth_timeout_s);
    if (now >= deadline)
      CloseSession(s, 1008, "authentication timeout");
    else
      Schedule(s, deadline);
    return;
  }
  uint32_t idle_at = s->last_rx + static_cast<uint32_t>(cfg_.idle_timeout_s);
  uint32_t ping_at = s->last_rx + static_cast<uint32_t>(cfg_.ping_interval_s);
  if (now >= idle_at) {
    CloseSession(s, 1001, "idle timeout");
    return;
  }
  if (now >= ping_at) {
    // Silent for a ping interval: ping (again every interval) until a pong or the hang-up.
    SendPing(s);
    Schedule(s, std::min(idle_at, now + static_cast<uint32_t>(cfg_.ping_interval_s)));
  } else {
    Schedule(s, ping_at);
  }
}

void Gateway::BeginDrain() {
  Post([this] { draining_ = true; });
}

void Gateway::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_requested_) return;
    stop_requested_ = true;
  }
  if (!thread_.joinable()) return;
  Post([this] {
    draining_ = true;
    closing_all_ = true;
    if (federation_) federation_->Stop();
    for (auto& [id, s] : sessions_) {
      s->close_after_flush = true;
      CloseSession(s, 1001, "server shutting down");
    }
    if (sessions_.empty()) ExitLoop();
  });
  // Sessions get up to 5 s to flush and close; then the loop ends regardless.
  if (exited_.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    log::Warn("gateway: sessions did not close in time; stopping anyway");
    Post([this] { ExitLoop(); });
  }
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  inbox_.clear();
}

}  // namespace chatd
