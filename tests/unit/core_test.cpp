// Unit tests: the core thread's Call contract (relay/core.h) on a real store.
#include "relay/core.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "tests/support/core_fixture.h"

using namespace chatd;

namespace {

using chatd::test::CoreFixture;

// Holds the core thread inside a posted functor until Release().
class Gate {
 public:
  void Hold(Core& core) {
    REQUIRE(core.Post([this] {
      std::unique_lock<std::mutex> lock(mu_);
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    }));
    std::unique_lock<std::mutex> lock(mu_);
    REQUIRE(cv_.wait_for(lock, std::chrono::seconds(10), [&] { return entered_; }));
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false, open_ = false;
};

}  // namespace

TEST_CASE("core: a call the core has not started when it times out is never run", "[relay]") {
  CoreFixture f;
  Gate gate;
  gate.Hold(*f.core);  // the core is busy: the next call waits in the inbox
  std::atomic<int> runs{0};
  auto r = f.core->Call<int>(
      [&]() -> Result<int> {
        runs++;
        return 1;
      },
      /*timeout_ms=*/50);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnavailable);
  CHECK(std::string(r.status().message()).find("nothing was done") != std::string::npos);
  gate.Release();
  // The core drains its inbox (the abandoned call included) before answering this one.
  auto after = f.core->Call<int>([]() -> Result<int> { return 2; });
  REQUIRE(after.ok());
  CHECK(*after == 2);
  CHECK(runs == 0);
}

TEST_CASE("core: a call the core has started is answered with its outcome, even past the timeout", "[relay]") {
  CoreFixture f;
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, open = false, returned = false;
  std::thread releaser([&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return started || returned; });
    if (returned) return;
    // Well past the caller's 200 ms timeout (the call is blocked inside the core), then let
    // the call finish.
    cv.wait_for(lock, std::chrono::milliseconds(600), [&] { return returned; });
    open = true;
    cv.notify_all();
  });
  std::atomic<int> runs{0};
  auto r = f.core->Call<int>(
      [&]() -> Result<int> {
        runs++;
        std::unique_lock<std::mutex> lock(mu);
        started = true;
        cv.notify_all();
        cv.wait(lock, [&] { return open; });
        return 7;
      },
      /*timeout_ms=*/200);
  {
    std::lock_guard<std::mutex> lock(mu);
    returned = true;
    cv.notify_all();
  }
  releaser.join();
  if (r.ok()) {
    CHECK(*r == 7);
    CHECK(runs == 1);
  } else {
    // The core did not even start it within 200 ms (a very busy machine): then it never runs.
    CHECK(r.status().code() == Code::kUnavailable);
    auto after = f.core->Call<int>([]() -> Result<int> { return 2; });
    REQUIRE(after.ok());
    CHECK(runs == 0);
    WARN("the core did not start the call within 200 ms; the started-call path was not exercised");
  }
}

TEST_CASE("core: this relay's users' last-seen times are stored, at a stop too, and loaded at start",
          "[relay][presence]") {
  CoreFixture f;
  auto presence = [&](const std::vector<uint64_t>& ids) {
    auto r = f.core->Call<std::vector<Core::PresenceNow>>(
        [&]() -> Result<std::vector<Core::PresenceNow>> { return f.core->PresenceOfUsers(ids); });
    REQUIRE(r.ok());
    return std::move(r).value();
  };
  // 7 stays online; 8 leaves before the stop.
  for (auto [uid, status] : {std::pair<uint64_t, const char*>{7, "online"}, {8, "online"}, {8, "offline"}}) {
    REQUIRE(f.core->CallStatus([&, uid = uid, status = status] { return f.core->OpPresence(uid, status, 0); }).ok());
  }
  auto before = presence({7, 8});
  CHECK(before[0].status == "online");
  REQUIRE(before[1].status == "offline");
  const int64_t left = before[1].last_seen;
  CHECK(left > 0);
  const int64_t stop_from = NowMs();
  f.core->Stop();  // 7, still online, was seen until now
  const int64_t stop_to = NowMs();

  auto rows = f.store->writer().LastSeen(10);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 2);
  std::map<uint64_t, int64_t> stored;
  for (const auto& r : *rows) stored[r.user_id] = r.at;
  CHECK(stored[8] == left);
  CHECK(stored[7] >= stop_from);
  CHECK(stored[7] <= stop_to);

  // A new core on the same store: both offline, last seen as stored; 9 never seen.
  f.core = std::make_unique<Core>(f.cfg, *f.store, f.key);
  REQUIRE(f.core->Start().ok());
  auto after = presence({7, 8, 9});
  CHECK(after[0].status == "offline");
  CHECK(after[0].last_seen == stored[7]);
  CHECK(after[1].status == "offline");
  CHECK(after[1].last_seen == left);
  CHECK(after[2].status == "offline");
  CHECK(after[2].last_seen == 0);
}
