// REST: file uploads (one request, or resumable in chunks) and downloads by signed URL.
//
// Upload bodies are streamed (httplib's ContentReader) into a temp file while hashed, never
// held in memory, and become a content-addressed blob (relay/files.h) before the core emits
// the file_create envelope that describes them. A body over the limit is read to its end
// (so the client gets its answer) but not stored. Downloads stream the blob from disk.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "base/log.h"
#include "base/time.h"
#include "relay/api_util.h"
#include "relay/files.h"

namespace chatd::api {

namespace {

// A file's metadata as PROTOCOL.md shows it, with a fresh signed file_url.
std::string FileJson(const Ctx& c, const store::FileRow& f) {
  const int64_t exp = NowMs() + int64_t{c.d.cfg->file_url_ttl_s} * 1000;
  json::JsonWriter w;
  w.BeginObject().Key("file_id").Id(f.file_id).Key("chat_id").Id(f.chat_id).Key("uploader_id").Id(f.uploader_id);
  w.Key("original_filename").Str(f.original_filename).Key("file_type").Str(f.file_type);
  w.Key("file_size").Int(static_cast<int64_t>(f.file_size)).Key("mime_type").Str(f.mime_type);
  w.Key("sha256").Str(f.sha256).Key("file_url").Str(c.d.cfg->public_api_url + c.urls->Path(f.file_id, exp));
  w.Key("file_url_expires_at").Time(exp).Key("thumbnail_url").Null().Key("upload_status").Str("complete");
  w.Key("created_at").Time(f.created_at).EndObject();
  return w.Take();
}

// Reads and discards the rest of a request body, so that an early answer reaches a client
// that is still sending (at most the server's payload bound).
void Drain(const httplib::Request& req, const httplib::ContentReader& reader) {
  if (req.is_multipart_form_data()) {
    reader([](const httplib::MultipartFormData&) { return true; }, [](const char*, size_t) { return true; });
  } else {
    reader([](const char*, size_t) { return true; });
  }
}

// Emits the file_create for a stored blob and answers 201 with the file.
void CreateFile(Ctx* c, const Claims& claims, const FileMeta& meta, httplib::Response& res) {
  Core* core = c->d.core;
  Actor actor{claims.user_id, claims.device_id};
  auto r = core->Call<store::FileRow>([=]() { return core->OpCreateFile(actor, meta); });
  if (!r.ok()) return Fail(res, r.status());
  Ok(res, 201, FileJson(*c, *r));
}

// The parts of a multipart upload: the file (streamed into a blob writer) and chat_id.
struct MultipartUpload {
  std::unique_ptr<files::BlobWriter> writer;
  std::string part, filename, content_type, chat_id_text;
  Status error;
  int files = 0;
};

// The upload of a chunk: the row, checked to be the caller's and unexpired.
Result<store::UploadRow> OwnUpload(Ctx* c, const Claims& claims, uint64_t upload_id) {
  auto lease = c->d.store->readers().Acquire();
  if (!lease.ok()) return lease.status();
  auto up = (*lease)->q().Upload(upload_id);
  if (!up.ok()) return up.status();
  if (!up.value() || up.value()->expires_at < NowMs()) return NotFound("no such upload (or it has expired)");
  if (up.value()->user_id != claims.user_id) return Forbidden("this upload belongs to another user");
  return std::move(*up.value());
}

// Chunk indexes of an upload that are not on disk yet.
std::vector<int> MissingChunks(const files::BlobStore& blobs, const store::UploadRow& up) {
  std::vector<int> missing;
  for (int n = 0; n < up.chunk_count(); ++n) {
    struct stat st;
    if (::stat(blobs.ChunkPath(up.upload_id, n).c_str(), &st) != 0) missing.push_back(n);
  }
  return missing;
}

Status RequireInUse(const Ctx& c, store::Queries& q, uint64_t file_id) {
  const int64_t now = NowMs();
  auto in_use = q.FileInUse(file_id, now, files::UnsentSince(now, c.d.cfg->unsent_file_ttl_s));
  if (!in_use.ok()) return in_use.status();
  return *in_use ? Status::Ok() : NotFound(files::kFileGone);
}

}  // namespace

Status StreamBlob(const std::string& path, const std::string& mime, httplib::Response& res) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    if (fd >= 0) ::close(fd);
    return Internal("cannot open the file's content");
  }
  auto file = std::shared_ptr<int>(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  res.set_content_provider(
      static_cast<size_t>(st.st_size), mime,
      [file](size_t offset, size_t length, httplib::DataSink& sink) {
        char buf[65536];
        ssize_t r = ::pread(*file, buf, std::min(length, sizeof buf), static_cast<off_t>(offset));
        if (r <= 0) return false;
        return sink.write(buf, static_cast<size_t>(r));
      },
      [file](bool) {});
  return Status::Ok();
}

bool StreamsBody(const httplib::Request& req) {
  if (req.method == "POST") return req.path == "/api/v1/files/upload";
  return req.method == "PUT" && req.path.rfind("/api/v1/files/uploads/", 0) == 0;
}

FilesJanitor::FilesJanitor(const Ctx* ctx) : c_(ctx) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "chatd-files");
    Run();
  });
}

void FilesJanitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FilesJanitor::Run() {
  const auto period = std::chrono::seconds(std::min(c_->d.cfg->file_gc_delay_s, 60));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    Sweep();
    CollectBlobs();
    passes_.fetch_add(1, std::memory_order_relaxed);
    lock.lock();
    cv_.wait_for(lock, period, [this] { return stop_; });
  }
}

// Deletes content no file in use needs (store::Queries::ContentInUse), once it has been
// unused and unwritten for api.file_gc_delay: at most kGcChecksPerPass blobs a pass,
// continuing where the last pass stopped, so a large blobs/ is covered over several passes.
void FilesJanitor::CollectBlobs() {
  constexpr int kGcChecksPerPass = 5000;
  const int64_t now = NowMs();
  const int64_t unused_before = now - int64_t{c_->d.cfg->file_gc_delay_s} * 1000;
  const int64_t unsent_since = files::UnsentSince(now, c_->d.cfg->unsent_file_ttl_s);
  int checked = 0, removed = 0;
  uint64_t bytes = 0;
  for (int dirs = 0; dirs < 256 && checked < kGcChecksPerPass; ++dirs, gc_prefix_ = (gc_prefix_ + 1) % 256) {
    for (const auto& blob : c_->blobs->BlobsIn(gc_prefix_)) {
      if (blob.mtime_ms > unused_before) continue;
      ++checked;
      bool in_use = true;
      {
        auto lease = c_->d.store->readers().Acquire();
        if (!lease.ok()) return;
        auto r = (*lease)->q().ContentInUse(blob.sha256, now, unsent_since);
        if (!r.ok()) return;
        in_use = *r;
      }
      if (!in_use && c_->blobs->RemoveUnused(blob)) {
        ++removed;
        bytes += blob.size;
      }
    }
  }
  blobs_deleted_.fetch_add(removed, std::memory_order_relaxed);
  blob_bytes_deleted_.fetch_add(bytes, std::memory_order_relaxed);
  if (removed) {
    log::Info("files: deleted content no file in use needs",
              {{"blobs", std::to_string(removed)}, {"bytes", std::to_string(bytes)}});
  }
}

void FilesJanitor::Sweep() {
  std::vector<uint64_t> expired, orphans;
  {
    auto lease = c_->d.store->readers().Acquire();
    if (!lease.ok()) return;
    auto ids = (*lease)->q().ExpiredUploads(NowMs(), 1000);
    if (ids.ok()) expired = std::move(*ids);
    for (uint64_t id : c_->blobs->UploadDirs()) {
      auto up = (*lease)->q().Upload(id);
      if (up.ok() && !up.value()) orphans.push_back(id);
    }
  }
  if (!expired.empty()) {
    Core* core = c_->d.core;
    Status r = core->CallStatus([core, expired] { return core->OpDropUploads(expired); });
    if (r.ok()) orphans.insert(orphans.end(), expired.begin(), expired.end());
  }
  for (uint64_t id : orphans) c_->blobs->RemoveUpload(id);
}

void RegisterFileRoutes(httplib::Server& s, Ctx& ctx) {
  Ctx* c = &ctx;

  s.Post("/api/v1/files/upload", [c](const httplib::Request& req, httplib::Response& res,
                                     const httplib::ContentReader& reader) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) {
      Drain(req, reader);
      return Fail(res, claims.status());
    }
    if (!req.is_multipart_form_data()) {
      Drain(req, reader);
      return Fail(res, Status(Code::kUnsupported, "the body must be multipart/form-data with parts file and chat_id"));
    }
    MultipartUpload up;
    const uint64_t max = static_cast<uint64_t>(c->d.cfg->max_file_bytes);
    bool read = reader(
        [&](const httplib::MultipartFormData& part) {
          up.part = part.name;
          if (part.name != "file") return true;
          if (++up.files > 1) {
            up.error = BadRequest("only one part named 'file' may be sent");
            up.writer.reset();
            return true;
          }
          up.filename = part.filename;
          up.content_type = part.content_type;
          // chat_id came first (as clients usually send it): a non-member's file is not
          // even written to disk.
          if (auto early = json::ParseId(up.chat_id_text)) {
            auto lease = c->d.store->readers().Acquire();
            up.error = lease.ok() ? RequireMember((*lease)->q(), *early, claims->user_id) : lease.status();
            if (!up.error.ok()) return true;
          }
          auto w = c->blobs->NewWriter(max);
          if (!w.ok())
            up.error = w.status();
          else
            up.writer = std::move(*w);
          return true;
        },
        [&](const char* data, size_t n) {
          if (up.part == "file" && up.writer && up.error.ok()) {
            Status st = up.writer->Write(data, n);
            if (!st.ok() && !up.writer->over_limit()) up.error = st;
          } else if (up.part == "chat_id" && up.chat_id_text.size() + n <= 32) {
            up.chat_id_text.append(data, n);
          }
          return true;  // read everything, stored or not, so the client gets the answer
        });
    if (up.writer && up.writer->over_limit()) {
      return Fail(res, TooLarge("the file is larger than limits.max_file_bytes (" + std::to_string(max) +
                                " bytes); nothing was stored"));
    }
    if (!read) return Fail(res, BadRequest("malformed multipart/form-data body"));
    if (!up.error.ok()) return Fail(res, up.error);
    if (!up.writer) return Fail(res, BadRequest("part 'file' is required"));
    auto chat_id = json::ParseId(up.chat_id_text);
    if (!chat_id) return Fail(res, BadRequest("part 'chat_id' is required (a chat id)"));
    {
      auto lease = c->d.store->readers().Acquire();
      if (!lease.ok()) return Fail(res, lease.status());
      if (Status st = RequireMember((*lease)->q(), *chat_id, claims->user_id); !st.ok()) return Fail(res, st);
    }
    FileMeta meta;
    meta.chat_id = *chat_id;
    meta.original_filename = files::SanitizeFilename(up.filename);
    meta.mime_type = files::NormalizeMime(up.content_type);
    meta.file_type = files::FileTypeOf(meta.mime_type);
    meta.file_size = up.writer->size();
    auto sha = up.writer->Commit();
    if (!sha.ok()) return Fail(res, sha.status());
    meta.sha256 = *sha;
    CreateFile(c, *claims, meta, res);
  });

  s.Get(R"(/api/v1/files/([^/]+))", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "file_id");
    if (!id.ok()) return Fail(res, id.status());
    auto lease = c->d.store->readers().Acquire();
    if (!lease.ok()) return Fail(res, lease.status());
    auto f = (*lease)->q().File(*id);
    if (!f.ok()) return Fail(res, f.status());
    if (!f.value()) return Fail(res, NotFound("no such file"));
    if (Status st = RequireInUse(*c, (*lease)->q(), *id); !st.ok()) return Fail(res, st);
    auto readable = (*lease)->q().CanReadFile(**f, claims->user_id);
    if (!readable.ok()) return Fail(res, readable.status());
    if (!*readable) {  // the usual answer: 404 without the chat, 403 not_member with it
      Status st = RequireMember((*lease)->q(), f.value()->chat_id, claims->user_id);
      return Fail(res, st.ok() ? Forbidden("you cannot read this file", "not_member") : st);
    }
    Ok(res, 200, FileJson(*c, **f));
  });

  // The signed URL is the credential: no bearer token, so a browser or player can fetch it.
  s.Get(R"(/api/v1/files/([^/]+)/content)", [c](const httplib::Request& req, httplib::Response& res) {
    auto id = PathId(req, 1, "file_id");
    if (!id.ok()) return Fail(res, id.status());
    if (!req.has_param("exp") || !req.has_param("sig")) {
      return Fail(res, Forbidden("a signed file URL (exp, sig) is required; GET /files/{id} gives one"));
    }
    const std::string exp_text = req.get_param_value("exp");
    auto exp = json::ParseId(exp_text);
    if (!exp || std::to_string(*exp) != exp_text) return Fail(res, Forbidden("the file URL's exp is not valid"));
    if (Status st = c->urls->Check(*id, static_cast<int64_t>(*exp), req.get_param_value("sig"), NowMs()); !st.ok()) {
      return Fail(res, st);
    }
    std::optional<store::FileRow> f;
    {
      auto lease = c->d.store->readers().Acquire();
      if (!lease.ok()) return Fail(res, lease.status());
      auto row = (*lease)->q().File(*id);
      if (!row.ok()) return Fail(res, row.status());
      if (row.value()) {
        if (Status st = RequireInUse(*c, (*lease)->q(), *id); !st.ok()) return Fail(res, st);
      }
      f = std::move(row.value());
    }
    if (!f) return Fail(res, NotFound("no such file"));
    if (!c->blobs->Has(f->sha256)) {
      if (Status st = FetchBlob(*c, *f); !st.ok()) return Fail(res, st);
    }
    // Normalised again: the metadata may come from a peer's envelope.
    const std::string mime = files::NormalizeMime(f->mime_type);
    if (Status st = StreamBlob(c->blobs->BlobPath(f->sha256), mime, res); !st.ok()) return Fail(res, st);
    res.set_header("Content-Disposition", files::ContentDisposition(f->original_filename));
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Cache-Control", "private, max-age=3600");
  });

  s.Post("/api/v1/files/uploads", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    json::Doc doc;
    if (Status st = ParseBody(req, &doc); !st.ok()) return Fail(res, st);
    auto name = json::GetString(doc, "file_name", 1024);
    auto size = json::GetInt(doc, "file_size", 1, INT64_MAX);
    auto mime = json::GetOptString(doc, "mime_type", 255);
    auto chat = json::GetId(doc, "chat_id");
    for (const Status* e : {&name.status(), &size.status(), &mime.status(), &chat.status()}) {
      if (!e->ok()) return Fail(res, *e);
    }
    const int64_t max = c->d.cfg->max_file_bytes;
    if (*size > max) {
      return Fail(res, TooLarge("file_size is larger than limits.max_file_bytes (" + std::to_string(max) + " bytes)"));
    }
    store::UploadRow up;
    up.chat_id = *chat;
    up.file_name = files::SanitizeFilename(*name);
    up.mime_type = files::NormalizeMime(mime.value().value_or(""));
    up.file_size = static_cast<uint64_t>(*size);
    up.chunk_size = static_cast<uint64_t>(c->d.cfg->upload_chunk_bytes);
    if (up.chunk_count() > files::kMaxChunks) {
      return Fail(res, TooLarge("file_size needs more than " + std::to_string(files::kMaxChunks) + " chunks"));
    }
    Core* core = c->d.core;
    Actor actor{claims->user_id, claims->device_id};
    auto r = core->Call<store::UploadRow>([=]() { return core->OpCreateUpload(actor, up); });
    if (!r.ok()) return Fail(res, r.status());
    if (Status st = c->blobs->MakeUploadDir(r->upload_id); !st.ok()) return Fail(res, st);
    json::JsonWriter w;
    w.BeginObject().Key("upload_id").Id(r->upload_id).Key("chunk_size").Int(static_cast<int64_t>(r->chunk_size));
    w.Key("chunk_count").Int(r->chunk_count()).Key("expires_at").Time(r->expires_at).EndObject();
    Ok(res, 201, w.View());
  });

  s.Put(R"(/api/v1/files/uploads/([^/]+)/chunks/([^/]+))", [c](const httplib::Request& req, httplib::Response& res,
                                                               const httplib::ContentReader& reader) {
    auto fail = [&](const Status& st) {
      Drain(req, reader);
      Fail(res, st);
    };
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return fail(claims.status());
    auto id = PathId(req, 1, "upload_id");
    if (!id.ok()) return fail(id.status());
    const std::string n_text = req.matches[2].str();
    auto up = OwnUpload(c, *claims, *id);
    if (!up.ok()) return fail(up.status());
    auto n = json::ParseId(n_text);
    const int count = up->chunk_count();
    bool zero = n_text == "0";
    if ((!n && !zero) || (n && *n >= static_cast<uint64_t>(count))) {
      return fail(BadRequest("chunk index must be 0 to " + std::to_string(count - 1)));
    }
    const int index = zero ? 0 : static_cast<int>(*n);
    const uint64_t expect =
        index + 1 < count ? up->chunk_size : up->file_size - up->chunk_size * static_cast<uint64_t>(count - 1);
    if (req.is_multipart_form_data()) return fail(BadRequest("a chunk is the raw body, not multipart"));
    auto w = c->blobs->NewWriter(expect);
    if (!w.ok()) return fail(w.status());
    Status err;
    bool read = reader([&](const char* data, size_t len) {
      if (err.ok() && !(*w)->over_limit()) {
        Status st = (*w)->Write(data, len);
        if (!st.ok() && !(*w)->over_limit()) err = st;
      }
      return true;
    });
    if (!read) return Fail(res, BadRequest("the chunk's body could not be read"));
    if (!err.ok()) return Fail(res, err);
    if ((*w)->over_limit() || (*w)->size() != expect) {
      return Fail(
          res, BadRequest("chunk " + std::to_string(index) + " must be exactly " + std::to_string(expect) + " bytes"));
    }
    if (Status st = (*w)->CommitTo(c->blobs->ChunkPath(*id, index)); !st.ok()) return Fail(res, st);
    auto missing = MissingChunks(*c->blobs, *up);
    json::JsonWriter out;
    out.BeginObject().Key("upload_id").Id(*id).Key("chunk").Int(index).Key("size").Int(static_cast<int64_t>(expect));
    out.Key("chunks_received").Int(count - static_cast<int64_t>(missing.size())).Key("chunk_count").Int(count);
    out.EndObject();
    Ok(res, 200, out.View());
  });

  s.Post(R"(/api/v1/files/uploads/([^/]+)/complete)", [c](const httplib::Request& req, httplib::Response& res) {
    auto claims = Authenticate(*c, req);
    if (!claims.ok()) return Fail(res, claims.status());
    auto id = PathId(req, 1, "upload_id");
    if (!id.ok()) return Fail(res, id.status());
    auto up = OwnUpload(c, *claims, *id);
    if (!up.ok()) return Fail(res, up.status());
    auto missing = MissingChunks(*c->blobs, *up);
    if (!missing.empty()) {
      std::string list;
      for (size_t i = 0; i < missing.size() && i < 50; ++i) list += (i ? ", " : "") + std::to_string(missing[i]);
      if (missing.size() > 50) list += ", …";
      return Fail(res, Conflict(std::to_string(missing.size()) + " chunk(s) missing: " + list));
    }
    auto sha = c->blobs->Assemble(*id, up->chunk_count(), up->file_size);
    if (!sha.ok()) return Fail(res, sha.status());
    FileMeta meta;
    meta.chat_id = up->chat_id;
    meta.original_filename = up->file_name;
    meta.mime_type = up->mime_type;
    meta.file_type = files::FileTypeOf(meta.mime_type);
    meta.file_size = up->file_size;
    meta.sha256 = *sha;
    meta.upload_id = *id;
    CreateFile(c, *claims, meta, res);
    if (res.status == 201) c->blobs->RemoveUpload(*id);
  });
}

}  // namespace chatd::api
