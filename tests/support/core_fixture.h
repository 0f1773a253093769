// tests/support/core_fixture.h — one relay's store and core (relay "t1", node 1) in a
// private directory, for unit tests of the core; the core is stopped with the fixture.
#pragma once

#include <catch2/catch.hpp>
#include <memory>

#include "conf/config.h"
#include "crypto/keys.h"
#include "relay/core.h"
#include "store/store.h"
#include "tests/support/temp_dir.h"

namespace chatd::test {

struct CoreFixture {
  TempDir dir;
  conf::Config cfg;
  crypto::KeyPair key = crypto::KeyPair::Generate();
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Core> core;
  // `relay_key`: sign with this key instead of `key` (it must outlive the fixture); two
  // fixtures with one key are the same relay, e.g. before and after its store was rolled back.
  explicit CoreFixture(const crypto::KeyPair* relay_key = nullptr) {
    cfg.relay_name = "t1";
    cfg.node_id = 1;
    cfg.data_dir = dir.path;
    auto s = store::Store::Open(dir.path, 1, /*create=*/true);
    REQUIRE(s.ok());
    store = std::move(s.value());
    core = std::make_unique<Core>(cfg, *store, relay_key ? *relay_key : key);
    REQUIRE(core->Start().ok());
  }
  ~CoreFixture() { core->Stop(); }
};

}  // namespace chatd::test
