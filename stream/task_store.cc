#include "stream/task_store.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cybersyn::stream {

std::string TaskPrefix(absl::string_view subtopology, int32_t partition) {
  return absl::StrCat("t/", subtopology, "/", partition, "/");
}

std::string StatePrefix(absl::string_view task_prefix) { return absl::StrCat(task_prefix, "s/"); }

std::string CheckpointKey(absl::string_view task_prefix) { return absl::StrCat(task_prefix, "m"); }

std::string EncodeCheckpoint(const Checkpoint& c) {
  return absl::StrCat(c.next_offset, "@", c.written_at_ms);
}

std::optional<Checkpoint> DecodeCheckpoint(absl::string_view value) {
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(value, '@');
  Checkpoint c;
  if (!absl::SimpleAtoi(parts.first, &c.next_offset) || c.next_offset < 0) return std::nullopt;
  if (!parts.second.empty() && !absl::SimpleAtoi(parts.second, &c.written_at_ms)) {
    return std::nullopt;
  }
  return c;
}

absl::StatusOr<uint64_t> DeletePrefix(KvStore& store, absl::string_view prefix) {
  WriteBatch wipe;
  absl::Status s = store.Scan(prefix, [&](absl::string_view k, absl::string_view) {
    wipe.Delete(k);
    return true;
  });
  if (!s.ok()) return s;
  if (!wipe.empty()) {
    if (absl::Status w = store.Write(wipe); !w.ok()) return w;
  }
  return wipe.size();
}

absl::Status WipeTask(KvStore& store, absl::string_view task_prefix) {
  return DeletePrefix(store, task_prefix).status();
}

}  // namespace cybersyn::stream
