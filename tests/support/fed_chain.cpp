#include "tests/support/fed_chain.h"

#include <algorithm>

#include "base/time.h"

namespace chatd::test {

Status FedChain::Start(const RelayOptions& base, const std::string& name_a, const std::string& name_b,
                       const std::string& name_c, int link_timeout_ms) {
  chatctl = base.chatctl_bin;
  auto make = [&](const std::string& name, int node, int* port) {
    RelayOptions o = base;
    o.relay_name = name;
    o.node_id = node;
    o = FedOptions(o);
    *port = FedPortOf(o);
    return std::make_unique<RelayProcess>(o);
  };
  a = make(name_a, 11, &port_a);
  b = make(name_b, 12, &port_b);
  c = make(name_c, 13, &port_c);
  for (RelayProcess* r : {a.get(), b.get(), c.get()}) {
    if (Status s = r->Init(); !s.ok()) return s;
  }
  auto ka = PublicKeyOf(chatctl, *a);
  auto kb = PublicKeyOf(chatctl, *b);
  auto kc = PublicKeyOf(chatctl, *c);
  if (!ka.ok()) return ka.status();
  if (!kb.ok()) return kb.status();
  if (!kc.ok()) return kc.status();
  key_a = *ka;
  key_b = *kb;
  key_c = *kc;
  // B: dialed by both, pins their keys only.
  if (Status s = PeerAdd(chatctl, *b, a->name(), "", key_a); !s.ok()) return s;
  if (Status s = PeerAdd(chatctl, *b, c->name(), "", key_c); !s.ok()) return s;
  // A and C: dial B; pin each other's key (gossiped envelopes and tokens).
  if (Status s = PeerAdd(chatctl, *a, b->name(), UrlB(), key_b); !s.ok()) return s;
  if (Status s = PeerAdd(chatctl, *a, c->name(), "", key_c); !s.ok()) return s;
  if (Status s = PeerAdd(chatctl, *c, b->name(), UrlB(), key_b); !s.ok()) return s;
  if (Status s = PeerAdd(chatctl, *c, a->name(), "", key_a); !s.ok()) return s;
  for (RelayProcess* r : {b.get(), a.get(), c.get()}) {
    if (Status s = r->Start(); !s.ok()) return s;
  }
  if (b->federation().port != port_b) {
    return Internal("B listens for peers on " + std::to_string(b->federation().port) + ", not the configured " +
                    std::to_string(port_b));
  }
  if (!WaitLinks(link_timeout_ms)) {
    auto f = GetAdminFederation(*b);
    return Internal("links A-B and C-B not up within " + std::to_string(link_timeout_ms) + " ms; B's status: " +
                    (f.ok() ? f->text() : f.status().message()));
  }
  return Status::Ok();
}

bool FedChain::WaitLinks(int timeout_ms) const {
  int64_t deadline = MonoMs() + timeout_ms;
  for (const RelayProcess* r : {a.get(), c.get()}) {
    int left = static_cast<int>(std::max<int64_t>(0, deadline - MonoMs()));
    if (!WaitLinked(chatctl, *r, b->name(), left)) return false;
  }
  int left = static_cast<int>(std::max<int64_t>(0, deadline - MonoMs()));
  return WaitLinked(chatctl, *b, a->name(), left) && WaitLinked(chatctl, *b, c->name(), left);
}

}  // namespace chatd::test
