// Core operations on files (core thread only): file_create envelopes and the local rows of
// resumable uploads. The blobs themselves are written by the REST threads (relay/files.h)
// before these run, so a file_create never names a blob this relay does not hold.
#include "base/json.h"
#include "relay/core.h"

namespace chatd {

Result<store::FileRow> Core::OpCreateFile(const Actor& actor, const FileMeta& meta) {
  if (own_log_.Holding()) return RecoveringStatus();  // before the upload's row goes
  auto role = RoleOrNotMember(meta.chat_id, actor.user_id);
  if (!role.ok()) return role.status();
  auto& w = store_.writer();
  if (meta.upload_id) {
    auto up = w.Upload(meta.upload_id);
    if (!up.ok()) return up.status();
    if (!up.value()) return NotFound("no such upload (it was completed or has expired)");
    if (Status s = w.DeleteUpload(meta.upload_id); !s.ok()) return s;
  }
  crypto::Envelope env;
  env.kind = crypto::Kind::kFileCreate;
  env.chat_id = meta.chat_id;
  env.author = actor.user_id;
  env.device = std::to_string(actor.device_id);
  env.id = NewId();  // the body names it: file_id
  json::JsonWriter body;
  body.BeginObject().Key("file_id").Id(env.id).Key("original_filename").Str(meta.original_filename);
  body.Key("mime_type").Str(meta.mime_type).Key("file_size").Int(static_cast<int64_t>(meta.file_size));
  body.Key("sha256").Str(meta.sha256).Key("file_type").Str(meta.file_type).EndObject();
  env.body = body.Take();
  auto pos = Emit(env);
  if (!pos.ok()) return pos.status();
  store::FileRow f;
  f.file_id = env.id;
  f.chat_id = meta.chat_id;
  f.uploader_id = actor.user_id;
  f.origin = env.origin;
  f.original_filename = meta.original_filename;
  f.mime_type = meta.mime_type;
  f.file_type = meta.file_type;
  f.sha256 = meta.sha256;
  f.file_size = meta.file_size;
  f.created_at = env.created_at;
  f.seq = env.seq;
  return f;
}

Result<store::UploadRow> Core::OpCreateUpload(const Actor& actor, store::UploadRow upload) {
  auto role = RoleOrNotMember(upload.chat_id, actor.user_id);
  if (!role.ok()) return role.status();
  upload.upload_id = NewId();
  upload.user_id = actor.user_id;
  upload.created_at = clock_->NowMs();
  upload.expires_at = upload.created_at + int64_t{cfg_.upload_ttl_s} * 1000;
  if (Status s = store_.writer().PutUpload(upload); !s.ok()) return s;
  return upload;
}

Status Core::OpDropUploads(const std::vector<uint64_t>& upload_ids) {
  for (uint64_t id : upload_ids) {
    if (Status s = store_.writer().DeleteUpload(id); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace chatd
