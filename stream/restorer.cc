#include "stream/restorer.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "stream/task_store.h"

namespace cybersyn::stream {

absl::Status RestoreChangelogs(ChangelogReader& reader, KvStore& store,
                               std::vector<RestoreTarget>& targets, const RestoreOptions& options) {
  std::vector<TopicPartitionOffset> assign;
  std::map<std::pair<std::string, int32_t>, RestoreTarget*> open;
  for (RestoreTarget& t : targets) {
    t.next = -1;
    t.entries = 0;
    t.reset = false;
    ASSIGN_OR_RETURN(auto wm, reader.Watermarks(t.changelog, t.partition, absl::Seconds(30)));
    if (t.from >= 0 && (t.from > wm.second || t.from < wm.first)) {
      // The local state describes a log that is not there any more.
      RETURN_IF_ERROR(WipeTask(store, t.task_prefix));
      t.from = kOffsetBeginning;
      t.reset = true;
    }
    // Nothing to replay (the common restart): skip the fetch round trips.
    if (wm.first == wm.second || (t.from >= 0 && t.from >= wm.second)) continue;
    if (options.on_replay) options.on_replay(t);
    assign.push_back({t.changelog, t.partition, t.from});
    open[{t.changelog, t.partition}] = &t;
  }
  if (assign.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(reader.Assign(assign));
  const std::string state = "s/";
  WriteBatch wb;
  std::map<RestoreTarget*, bool> moved;  // targets with entries in wb
  auto flush = [&]() -> absl::Status {
    for (auto& [t, unused] : moved) {
      wb.Put(CheckpointKey(t->task_prefix),
             EncodeCheckpoint({t->next, options.clock->NowMillis()}));
    }
    moved.clear();
    if (wb.empty()) return absl::OkStatus();
    absl::Status s = store.Write(wb);
    wb = WriteBatch();
    return s;
  };
  uint64_t total = 0;
  const absl::Time deadline = absl::Now() + options.timeout;
  std::vector<TopicPartitionOffset> ended;
  while (!open.empty()) {
    if (absl::Now() > deadline) {
      const auto& [tp, t] = *open.begin();
      return absl::DeadlineExceededError(absl::StrCat(
          "changelog restore timed out: ", tp.first, "[", tp.second, "] not at its end after ",
          absl::FormatDuration(options.timeout), " (", t->entries, " entries read)"));
    }
    ended.clear();
    ASSIGN_OR_RETURN(auto msgs, reader.Read(10000, absl::Milliseconds(500), &ended));
    for (const ConsumedMessage& m : msgs) {
      auto it = open.find({std::string(m.topic()), m.partition()});
      if (it == open.end()) continue;
      RestoreTarget* t = it->second;
      const std::string key = absl::StrCat(t->task_prefix, state, m.key());
      if (m.value().empty()) {
        wb.Delete(key);
      } else {
        wb.Put(key, m.value());
      }
      t->next = m.offset() + 1;
      ++t->entries;
      moved[t] = true;
      if (++total % 10000 == 0) {
        RETURN_IF_ERROR(flush());
        if (options.progress) options.progress(total);
      }
    }
    for (const TopicPartitionOffset& e : ended) {
      auto it = open.find({e.topic, e.partition});
      if (it == open.end()) continue;
      // The end is past what was read when the log ends in markers: start there next time.
      if (e.offset > it->second->next) {
        it->second->next = e.offset;
        moved[it->second] = true;
      }
      open.erase(it);
    }
  }
  RETURN_IF_ERROR(flush());
  return reader.Assign({});
}

}  // namespace cybersyn::stream
