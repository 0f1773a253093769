// chatctl store verify|rebuild — the envelope log checked end to end, and the views
// re-derived from it (DESIGN.md §5).
//
// verify opens the store read-only (safe while the relay runs: it reads one snapshot) and
// checks every envelope: its bounds, body hash and signature against the key of its
// origin (this relay's own, or a pinned peer's), its stored header hash, and that each
// origin's sequence has no gap. Then it copies the store (SQLite's backup API) to a temp
// file, re-derives every view there, and compares each view table before and after: a
// difference means the views no longer follow from the log. rebuild re-derives the views
// in place, with the relay stopped.
#include "store/store.h"

#include <sodium.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"
#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "relay/relay.h"
#include "store/views.h"

namespace chatd::cli {

namespace {

// The view tables RebuildViews re-derives (the local-only tables and the log are not views).
constexpr size_t kMaxProblemsShown = 20;

struct Report {
  uint64_t envelopes = 0, erased = 0, invalid = 0;
  std::map<std::string, uint64_t> per_origin;  // origin -> highest seq seen
  std::vector<std::string> problems;
  uint64_t problem_count = 0;
  void Problem(std::string p) {
    ++problem_count;
    if (problems.size() < kMaxProblemsShown) problems.push_back(std::move(p));
  }
};

// BLAKE2b of a table's rows in a deterministic order (every column, ascending).
Result<std::string> TableDigest(store::Db& db, const std::string& table) {
  sqlite3_stmt* probe = nullptr;
  std::string sql = "SELECT * FROM " + table;
  if (sqlite3_prepare_v2(db.raw(), sql.c_str(), -1, &probe, nullptr) != SQLITE_OK) {
    return IoError("cannot read table " + table + ": " + db.ErrMsg());
  }
  int cols = sqlite3_column_count(probe);
  sqlite3_finalize(probe);
  std::string order;
  for (int i = 1; i <= cols; ++i) order += (i > 1 ? "," : "") + std::to_string(i);
  auto st = db.Prepare(sql + " ORDER BY " + order);
  if (!st.ok()) return st.status();
  crypto_generichash_state h;
  crypto_generichash_init(&h, nullptr, 0, 32);
  for (;;) {
    auto r = st->Step();
    if (!r.ok()) return r.status();
    if (!r.value()) break;
    for (int i = 0; i < cols; ++i) {
      std::string v = st->Blob(i);
      std::string cell = std::to_string(v.size()) + ":" + v;  // length-prefixed: no ambiguity
      crypto_generichash_update(&h, reinterpret_cast<const uint8_t*>(cell.data()), cell.size());
    }
  }
  uint8_t out[32];
  crypto_generichash_final(&h, out, sizeof out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

Status CheckLog(store::Db& db, const std::map<std::string, crypto::PublicKey>& keys, Report& rep) {
  uint64_t after = 0;
  for (;;) {
    auto st = db.Prepare(std::string("SELECT ") + store::kEnvelopeColumns +
                         ", header_hash, valid FROM envelopes WHERE pos > ? ORDER BY pos LIMIT 1000");
    if (!st.ok()) return st.status();
    st->Bind(1, after);
    size_t n = 0;
    for (;;) {
      auto r = st->Step();
      if (!r.ok()) return r.status();
      if (!r.value()) break;
      ++n;
      store::EnvelopeRow row = store::ReadEnvelope(*st);
      const crypto::Envelope& e = row.env;
      after = row.pos;
      ++rep.envelopes;
      if (e.erased()) ++rep.erased;
      if (st->Int(store::kEnvelopeColumnCount + 1) == 0) ++rep.invalid;
      const std::string where = "pos " + std::to_string(row.pos) + " (" + e.origin + "/" + std::to_string(e.seq) + ")";
      uint64_t& last = rep.per_origin[e.origin];
      if (e.seq != last + 1) {
        rep.Problem(where + ": sequence gap or disorder after seq " + std::to_string(last));
      }
      last = std::max(last, e.seq);
      auto hh = crypto::HeaderHash(e);
      if (st->Blob(store::kEnvelopeColumnCount) != std::string(reinterpret_cast<const char*>(hh.data()), hh.size())) {
        rep.Problem(where + ": stored header hash does not match the header");
      }
      auto key = keys.find(e.origin);
      if (key == keys.end()) {
        rep.Problem(where + ": origin '" + e.origin + "' is neither this relay nor a pinned peer");
        continue;
      }
      if (Status s = crypto::Verify(e, key->second); !s.ok()) rep.Problem(where + ": " + s.message());
    }
    if (n == 0) break;
  }
  return Status::Ok();
}

// Copies the store to `copy` (a consistent snapshot), re-derives the views there and
// reports every view table whose rows changed.
Status CheckViews(store::Db& src, const std::string& copy, Report& rep) {
  {
    auto dst = store::Db::Open(copy, /*create=*/true, /*read_only=*/false);
    if (!dst.ok()) return dst.status();
    sqlite3_backup* b = sqlite3_backup_init((*dst)->raw(), "main", src.raw(), "main");
    if (!b) return IoError("cannot copy the store: " + (*dst)->ErrMsg());
    int rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) return IoError(std::string("cannot copy the store: ") + sqlite3_errstr(rc));
  }
  auto db = store::Db::Open(copy, false, false);
  if (!db.ok()) return db.status();
  std::map<std::string, std::string> before;
  for (const char* t : store::kViewTables) {
    auto d = TableDigest(**db, t);
    if (!d.ok()) return d.status();
    before[t] = *d;
  }
  store::Writer w(std::move(db).value());
  if (Status s = w.Begin(); !s.ok()) return s;
  if (Status s = w.RebuildViews(); !s.ok()) {
    (void)w.Rollback();
    return s;
  }
  if (Status s = w.Commit(); !s.ok()) return s;
  for (const char* t : store::kViewTables) {
    auto d = TableDigest(w.db(), t);
    if (!d.ok()) return d.status();
    if (*d != before[t]) rep.Problem(std::string("view '") + t + "' differs from what the log derives");
  }
  return Status::Ok();
}

// This relay's key and every pinned peer's, by relay name.
Result<std::map<std::string, crypto::PublicKey>> Keys(const conf::Config& cfg) {
  std::map<std::string, crypto::PublicKey> keys;
  auto own = crypto::KeyPair::LoadFile(cfg.data_dir + "/" + Relay::kKeyFile);
  if (!own.ok()) return own.status();
  keys.emplace(cfg.relay_name, own->public_key());
  for (const conf::Peer& p : cfg.peers) {
    auto k = crypto::ParsePublicKey(p.key);
    if (k.ok()) keys.emplace(p.name, *k);
  }
  return keys;
}

void Fail(Globals& g, const Status& s) {
  PrintError(s);
  g.exit_code = kFail;
}

}  // namespace

void RegisterStore(CLI::App& app, Globals& g) {
  CLI::App* storecmd = app.add_subcommand("store", "the envelope log and its views: verify, rebuild");
  storecmd->require_subcommand(1);

  auto skip_views = std::make_shared<bool>(false);
  CLI::App* verify = storecmd->add_subcommand(
      "verify", "check every envelope's signature, hashes and sequence, and that the views follow from the log");
  verify->add_flag("--log-only", *skip_views, "check the log only, not the views (no temp copy of the store)");
  verify->callback([skip_views, &g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    auto keys = Keys(*cfg);
    if (!keys.ok()) return Fail(g, keys.status());
    const std::string path = cfg->data_dir + "/" + store::Store::kFileName;
    if (!std::filesystem::exists(path)) return Fail(g, NotFound("no store at " + path));
    auto db = store::Db::Open(path, false, /*read_only=*/true);
    if (!db.ok()) return Fail(g, db.status());
    Report rep;
    // One read transaction: the log and the copy are the same snapshot while the relay writes.
    if (Status s = (*db)->Exec("BEGIN"); !s.ok()) return Fail(g, s);
    Status s = CheckLog(**db, *keys, rep);
    if (s.ok() && !*skip_views) {
      char tmpl[] = "/tmp/chatctl-verify-XXXXXX";
      if (!mkdtemp(tmpl)) return Fail(g, IoError("cannot make a temp dir"));
      s = CheckViews(**db, std::string(tmpl) + "/copy.db", rep);
      std::error_code ec;
      std::filesystem::remove_all(tmpl, ec);
    }
    (void)(*db)->Exec("COMMIT");
    if (!s.ok()) return Fail(g, s);
    if (g.output == "json") {
      json::JsonWriter w;
      w.BeginObject().Key("ok").Bool(rep.problem_count == 0);
      w.Key("envelopes").Int(static_cast<int64_t>(rep.envelopes)).Key("erased").Int(static_cast<int64_t>(rep.erased));
      w.Key("invalid").Int(static_cast<int64_t>(rep.invalid)).Key("views_checked").Bool(!*skip_views);
      w.Key("origins").BeginObject();
      for (const auto& [o, seq] : rep.per_origin) w.Key(o).Int(static_cast<int64_t>(seq));
      w.EndObject().Key("problem_count").Int(static_cast<int64_t>(rep.problem_count)).Key("problems").BeginArray();
      for (const auto& p : rep.problems) w.Str(p);
      w.EndArray().EndObject();
      printf("%s\n", w.View().data());
    } else {
      printf("envelopes %llu (erased %llu, invalid %llu) from %zu origin(s)\n",
             static_cast<unsigned long long>(rep.envelopes), static_cast<unsigned long long>(rep.erased),
             static_cast<unsigned long long>(rep.invalid), rep.per_origin.size());
      for (const auto& p : rep.problems) printf("PROBLEM %s\n", p.c_str());
      if (rep.problem_count > rep.problems.size()) {
        printf("... and %llu more\n", static_cast<unsigned long long>(rep.problem_count - rep.problems.size()));
      }
      printf("%s\n", rep.problem_count == 0 ? (*skip_views ? "log OK" : "log and views OK") : "NOT OK");
    }
    if (rep.problem_count) g.exit_code = kFail;
  });

  struct RebuildOpts {
    bool yes = false, dry_run = false;
  };
  auto ro = std::make_shared<RebuildOpts>();
  CLI::App* rebuild = storecmd->add_subcommand("rebuild", "re-derive every view from the log (the relay stopped)");
  rebuild->add_flag("--yes", ro->yes, "do it (the views are replaced)");
  rebuild->add_flag("--dry-run", ro->dry_run, "say what would be done and change nothing");
  rebuild->callback([ro, &g] {
    auto cfg = LoadRelayConfig(g);
    if (!cfg.ok()) return;
    if (RelayRunning(*cfg)) return Fail(g, Status(Code::kConflict, "the relay is running; stop it first"));
    const std::string path = cfg->data_dir + "/" + store::Store::kFileName;
    if (!std::filesystem::exists(path)) return Fail(g, NotFound("no store at " + path));
    if (ro->dry_run || !ro->yes) {
      printf("would re-derive the views of %s from its log%s\n", path.c_str(),
             ro->dry_run ? "" : " (add --yes to do it)");
      if (!ro->dry_run) g.exit_code = kUsage;
      return;
    }
    auto st = store::Store::Open(cfg->data_dir, 1, false);
    if (!st.ok()) return Fail(g, st.status());
    store::Writer& w = (*st)->writer();
    if (Status s = w.Begin(); !s.ok()) return Fail(g, s);
    if (Status s = w.RebuildViews(); !s.ok()) {
      (void)w.Rollback();
      return Fail(g, s);
    }
    if (Status s = w.Commit(); !s.ok()) return Fail(g, s);
    auto n = w.CountEnvelopes();
    printf("views re-derived from %lld envelopes\n", n.ok() ? static_cast<long long>(*n) : -1LL);
  });
}

}  // namespace chatd::cli
