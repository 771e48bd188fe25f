#include "query/query_store.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "alerter/detectors/detector.h"
#include "common/kafka_consumer.h"
#include "common/rocksdb_store.h"
#include "common/status.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "spdlog/spdlog.h"

namespace cybersyn::query {
namespace {

constexpr char kSep = '\x1f';

std::string SeriesPrefix(absl::string_view node, absl::string_view indicator, int64_t window_ms) {
  return absl::StrFormat("a/%s%c%s%c%016x%c", node, kSep, indicator, kSep, window_ms, kSep);
}

std::string AggregateKey(const v1::WindowAggregate& a) {
  return absl::StrCat(
      SeriesPrefix(a.series().node(), a.series().indicator(), a.series().window_ms()),
      absl::StrFormat("%016x", a.window_start_ms()));
}

// Retention index: prefix ("t/" aggregates, "r/" resolved signals), the time, and what it keys
// (the aggregate's key, the signal's id), so that keys sort by time.
std::string IndexKey(absl::string_view prefix, int64_t time_ms, absl::string_view target) {
  return absl::StrCat(prefix, absl::StrFormat("%016x", time_ms), std::string(1, kSep), target);
}

// The time and target of an index key; false for a key not of that form.
bool ParseIndexKey(absl::string_view key, int64_t* time_ms, absl::string_view* target) {
  uint64_t t = 0;
  if (key.size() < 19 || key[18] != kSep || !absl::SimpleHexAtoi(key.substr(2, 16), &t)) {
    return false;
  }
  *time_ms = static_cast<int64_t>(t);
  *target = key.substr(19);
  return true;
}

constexpr size_t kMaxSweep = 100000;  // deletions per sweep, so one write batch stays small

std::string OffsetKey(absl::string_view topic, int32_t partition) {
  return absl::StrCat("o/", topic, "/", partition);
}

int Rank(v1::Severity s) {
  switch (s) {
    case v1::SEVERITY_CRISIS:
      return 3;
    case v1::SEVERITY_ALERT:
      return 2;
    case v1::SEVERITY_REWARD:
      return 1;
    default:
      return 0;
  }
}

}  // namespace

QueryStore::QueryStore(QueryStoreOptions options)
    : options_(std::move(options)),
      topics_(options_.topic_prefix),
      epoch_(absl::StrCat(absl::ToUnixMicros(absl::Now()))) {}

absl::StatusOr<std::unique_ptr<QueryStore>> QueryStore::Start(QueryStoreOptions options) {
  if (options.config == nullptr) return absl::InvalidArgumentError("query store needs a config");
  std::unique_ptr<QueryStore> q(new QueryStore(std::move(options)));
  q->retention_ms_ = absl::ToInt64Milliseconds(
      q->options_.retention.value_or(q->options_.config->query.retention));
  if (q->options_.state_dir.empty()) {
    q->store_ = std::make_unique<MemoryKvStore>();
  } else {
    auto db = RocksDbStore::Open({q->options_.state_dir, q->options_.memory_limit});
    if (!db.ok()) return db.status();
    q->store_ = std::move(*db);
  }
  // Reload what a previous run materialised: offsets, open signals, last values.
  {
    absl::MutexLock lock(&q->mu_);
    absl::Status s = q->store_->Scan("s/", [&](absl::string_view, absl::string_view v) {
      v1::Signal sig;
      if (sig.ParseFromArray(v.data(), static_cast<int>(v.size())) &&
          sig.state() != v1::SIGNAL_STATE_RESOLVED) {
        q->open_[sig.id()] = sig;
      }
      return true;
    });
    if (!s.ok()) return s;
    s = q->store_->Scan("l/", [&](absl::string_view k, absl::string_view v) {
      std::vector<std::string> parts = absl::StrSplit(k.substr(2), kSep);
      double d = 0;
      if (parts.size() == 2 && absl::SimpleAtod(v, &d)) q->last_values_[parts[0]][parts[1]] = d;
      return true;
    });
    if (!s.ok()) return s;
  }
  q->thread_ = std::thread([p = q.get()] { p->Run(); });
  return q;
}

QueryStore::~QueryStore() { Stop(); }

void QueryStore::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

absl::Status QueryStore::Apply(absl::string_view topic, int32_t partition, int64_t offset,
                               absl::string_view value, WriteBatch& batch,
                               std::vector<std::function<void()>>& publish) {
  if (topic == topics_.aggregates) {
    v1::WindowAggregate a;
    if (!a.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return absl::DataLossError(
          absl::StrCat("undecodable aggregate at ", topic, "[", partition, "]@", offset));
    }
    const int64_t start = a.window_start_ms();
    aggregate_time_ms_ = std::max(aggregate_time_ms_, start);
    if (start < Cutoff(aggregate_time_ms_)) {
      aggregates_expired_.fetch_add(1);
    } else {
      const std::string key = AggregateKey(a);
      batch.Put(IndexKey("t/", start, key), "");
      batch.Put(key, value);
    }
    const auto& w = options_.config->aggregator.windows;
    const int64_t smallest = w.empty() ? a.series().window_ms() : absl::ToInt64Milliseconds(w[0]);
    if (a.series().window_ms() == smallest) {
      batch.Put(absl::StrCat("l/", a.series().node(), std::string(1, kSep), a.series().indicator()),
                absl::StrCat(a.value()));
      publish.push_back(
          [this, node = a.series().node(), indicator = a.series().indicator(), v = a.value()]()
              ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { last_values_[node][indicator] = v; });
    }
    aggregates_seen_.fetch_add(1);
  } else {
    v1::SignalEvent e;
    if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return absl::DataLossError(
          absl::StrCat("undecodable signal event at ", topic, "[", partition, "]@", offset));
    }
    batch.Put(absl::StrCat("s/", e.signal().id()), e.signal().SerializeAsString());
    const int64_t at =
        e.transition().at_ms() != 0 ? e.transition().at_ms() : e.signal().raised_at_ms();
    signal_time_ms_ = std::max(signal_time_ms_, at);
    if (e.signal().state() == v1::SIGNAL_STATE_RESOLVED) {
      batch.Put(IndexKey("r/", at, e.signal().id()), "");
    }
    publish.push_back([this, e = std::move(e)]() mutable ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (e.signal().state() == v1::SIGNAL_STATE_RESOLVED) {
        open_.erase(e.signal().id());
      } else {
        open_[e.signal().id()] = e.signal();
      }
      ring_.emplace_back(next_seq_++, std::move(e));
      while (ring_.size() > options_.event_ring) ring_.pop_front();
      events_seen_.fetch_add(1);
    });
  }
  return absl::OkStatus();
}

void QueryStore::Run() {
  ConsumerOptions copts;
  copts.client = options_.client;
  auto consumer_or = KafkaConsumer::Create(copts);
  if (!consumer_or.ok()) {
    spdlog::error("query store: {}", consumer_or.status().ToString());
    return;
  }
  KafkaConsumer& consumer = **consumer_or;
  // Wait for the topics to exist, then assign every partition from the stored offsets.
  std::vector<TopicPartitionOffset> assignment;
  while (!stop_.load() && assignment.empty()) {
    auto info = DescribeCluster(options_.client, absl::Seconds(5));
    if (info.ok() && info->topics.count(topics_.aggregates) &&
        info->topics.count(topics_.signals)) {
      for (const std::string& t : {topics_.aggregates, topics_.signals}) {
        for (int p = 0; p < info->topics.at(t); ++p) {
          int64_t offset = 0;
          auto stored = store_->Get(OffsetKey(t, p));
          if (stored.ok()) (void)absl::SimpleAtoi(*stored, &offset);
          assignment.push_back({t, p, offset});
        }
      }
    } else {
      absl::SleepFor(absl::Milliseconds(500));
    }
  }
  if (stop_.load()) return;
  if (absl::Status s = consumer.Assign(assignment); !s.ok()) {
    spdlog::error("query store: {}", s.ToString());
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    for (const auto& a : assignment) positions_[{a.topic, a.partition}] = a.offset;
  }
  while (!stop_.load()) {
    auto msgs = consumer.ConsumeBatch(2000, absl::Milliseconds(200));
    if (!msgs.ok()) {
      spdlog::error("query store: {}", msgs.status().ToString());
      absl::SleepFor(absl::Seconds(1));
      continue;
    }
    if (msgs->empty()) continue;
    WriteBatch batch;
    std::vector<std::function<void()>> publish;
    std::map<std::pair<std::string, int32_t>, int64_t> next;
    for (const ConsumedMessage& m : *msgs) {
      if (absl::Status s = Apply(m.topic(), m.partition(), m.offset(), m.value(), batch, publish);
          !s.ok()) {
        spdlog::warn("query store: skipping: {}", s.ToString());
      }
      next[{std::string(m.topic()), m.partition()}] = m.offset() + 1;
    }
    for (const auto& [tp, off] : next) batch.Put(OffsetKey(tp.first, tp.second), absl::StrCat(off));
    if (absl::Status s = store_->Write(batch); !s.ok()) {
      spdlog::error("query store: {}", s.ToString());
    }
    if (sweep_again_ || absl::Now() - last_sweep_ >= options_.sweep_every) {
      last_sweep_ = absl::Now();
      if (absl::Status s = Sweep(); !s.ok()) {
        spdlog::error("query store: deleting history past retention: {}", s.ToString());
      }
    }
    absl::MutexLock lock(&mu_);
    for (auto& p : publish) p();
    for (const auto& [tp, off] : next) positions_[tp] = off;
  }
  (void)consumer.Close();
}

int64_t QueryStore::Cutoff(int64_t stream_time_ms) const {
  if (stream_time_ms < std::numeric_limits<int64_t>::min() + retention_ms_) {
    return std::numeric_limits<int64_t>::min();
  }
  return stream_time_ms - retention_ms_;
}

absl::Status QueryStore::Sweep() {
  sweep_again_ = false;
  WriteBatch batch;
  size_t n = 0;
  uint64_t aggregates = 0;
  // Index keys in time order, up to the first one still within retention.
  auto scan = [&](absl::string_view prefix, int64_t cutoff,
                  const std::function<void(absl::string_view target)>& expire) {
    return store_->Scan(prefix, [&](absl::string_view k, absl::string_view) {
      if (n >= kMaxSweep) {
        sweep_again_ = true;
        return false;
      }
      int64_t t = 0;
      absl::string_view target;
      const bool ok = ParseIndexKey(k, &t, &target);
      if (ok && t >= cutoff) return false;
      batch.Delete(k);
      ++n;
      if (ok) expire(target);
      return true;
    });
  };
  RETURN_IF_ERROR(scan("t/", Cutoff(aggregate_time_ms_), [&](absl::string_view key) {
    batch.Delete(key);
    ++aggregates;
  }));
  std::vector<std::string> resolved;
  RETURN_IF_ERROR(scan("r/", Cutoff(signal_time_ms_),
                       [&](absl::string_view id) { resolved.emplace_back(id); }));
  uint64_t signals = 0;
  for (const std::string& id : resolved) {
    // Only if still resolved: a later event may have reopened it under the same id.
    auto stored = store_->Get(absl::StrCat("s/", id));
    v1::Signal sig;
    if (stored.ok() && sig.ParseFromString(*stored) && sig.state() == v1::SIGNAL_STATE_RESOLVED) {
      batch.Delete(absl::StrCat("s/", id));
      ++signals;
    }
  }
  if (batch.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(store_->Write(batch));
  aggregates_expired_.fetch_add(aggregates);
  signals_expired_.fetch_add(signals);
  return absl::OkStatus();
}

absl::Status QueryStore::WaitCaughtUp(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  ConsumerOptions copts;
  copts.client = options_.client;
  auto consumer = KafkaConsumer::Create(copts);
  if (!consumer.ok()) return consumer.status();
  std::map<std::pair<std::string, int32_t>, int64_t> high;
  while (absl::Now() < deadline) {
    {
      absl::MutexLock lock(&mu_);
      if (!positions_.empty() && high.empty()) {
        for (const auto& [tp, pos] : positions_) {
          auto w = (*consumer)->Watermarks(tp.first, tp.second, absl::Seconds(5));
          if (!w.ok()) return w.status();
          high[tp] = w->second;
        }
      }
      if (!high.empty()) {
        bool done = true;
        for (const auto& [tp, h] : high) {
          // A transaction's commit marker takes the last offset: position h-1 is the end.
          if (positions_[tp] < h - 1) done = false;
        }
        if (done) return absl::OkStatus();
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError("query store did not catch up in time");
}

absl::StatusOr<v1::SeriesHistoryResponse> QueryStore::SeriesHistory(
    const v1::SeriesHistoryRequest& request) {
  const Config& config = *options_.config;
  if (config.hierarchy->Find(request.node()) == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown node \"", request.node(), "\""));
  }
  const IndicatorConfig* ind = config.FindIndicator(request.indicator());
  if (ind == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown indicator \"", request.indicator(), "\""));
  }
  int64_t window_ms = request.window_ms();
  if (window_ms == 0 && !config.aggregator.windows.empty()) {
    window_ms = absl::ToInt64Milliseconds(config.aggregator.windows[0]);
  }
  std::vector<v1::WindowAggregate> all;
  absl::Status s = store_->Scan(SeriesPrefix(request.node(), request.indicator(), window_ms),
                                [&](absl::string_view, absl::string_view v) {
                                  v1::WindowAggregate a;
                                  if (a.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
                                    all.push_back(std::move(a));
                                  }
                                  return true;
                                });
  if (!s.ok()) return s;
  // Replay the indicator's detector over the whole stored series for the forecasts.
  alerter::DetectorParams params;
  for (const auto& [k, v] : ind->detector.params) params[k] = v;
  std::unique_ptr<alerter::Detector> detector;
  if (ind->detector.kind != DetectorKind::kNone) {
    auto d = alerter::MakeDetector(DetectorKindName(ind->detector.kind), params);
    if (d.ok()) detector = std::move(*d);
  }
  std::map<int64_t, std::vector<std::string>> signal_windows;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, sig] : open_) {
      if (sig.series().node() == request.node() &&
          sig.series().indicator() == request.indicator()) {
        signal_windows[sig.window_start_ms()].push_back(id);
      }
    }
  }
  const int64_t to = request.to_ms() == 0 ? std::numeric_limits<int64_t>::max() : request.to_ms();
  v1::SeriesHistoryResponse out;
  for (const v1::WindowAggregate& a : all) {
    alerter::Verdict v;
    if (detector) v = detector->Update({a.window_start_ms(), a.value(), false});
    if (a.window_start_ms() < request.from_ms() || a.window_start_ms() > to) continue;
    v1::SeriesPoint* p = out.add_points();
    *p->mutable_aggregate() = a;
    if (detector && std::isfinite(v.forecast)) {
      p->set_has_forecast(true);
      p->set_forecast(v.forecast);
      p->set_forecast_lower(v.lower);
      p->set_forecast_upper(v.upper);
    }
    p->set_score(v.score);
    auto it = signal_windows.find(a.window_start_ms());
    if (it != signal_windows.end()) {
      for (const auto& id : it->second) p->add_signal_ids(id);
    }
  }
  // Keep the newest `limit` points.
  const int limit = request.limit() == 0 ? 1000 : static_cast<int>(request.limit());
  if (out.points_size() > limit) {
    out.mutable_points()->DeleteSubrange(0, out.points_size() - limit);
  }
  return out;
}

void QueryStore::FillStatus(const Hierarchy::Node& node, int depth, v1::NodeStatus* out) {
  out->set_node(node.path);
  out->set_title(node.title);
  out->set_level(node.level);
  int worst = 0;
  v1::Severity worst_sev = v1::SEVERITY_UNSPECIFIED;
  for (const auto& [id, sig] : open_) {
    if (sig.current_node() != node.path) continue;
    *out->add_open_signals() = sig;
    if (Rank(sig.severity()) > worst) {
      worst = Rank(sig.severity());
      worst_sev = sig.severity();
    }
  }
  out->set_worst(worst_sev);
  auto lv = last_values_.find(node.path);
  if (lv != last_values_.end()) {
    for (const auto& [ind, v] : lv->second) (*out->mutable_last_values())[ind] = v;
  }
  if (depth <= 0) return;
  for (const Hierarchy::Node* child : node.children) {
    FillStatus(*child, depth - 1, out->add_children());
  }
}

absl::StatusOr<v1::NodeStatus> QueryStore::Status(const std::string& node, int depth) {
  const Hierarchy& h = *options_.config->hierarchy;
  const Hierarchy::Node* n = node.empty() ? &h.root() : h.Find(node);
  if (n == nullptr) return absl::NotFoundError(absl::StrCat("unknown node \"", node, "\""));
  v1::NodeStatus out;
  absl::ReaderMutexLock lock(&mu_);
  FillStatus(*n, depth, &out);
  return out;
}

std::vector<v1::Signal> QueryStore::OpenSignals(const std::string& subtree) {
  std::vector<v1::Signal> out;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [id, sig] : open_) {
      if (subtree.empty() || Hierarchy::PathIsInSubtree(sig.origin_node(), subtree)) {
        out.push_back(sig);
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const v1::Signal& a, const v1::Signal& b) {
    return a.raised_at_ms() > b.raised_at_ms();
  });
  return out;
}

absl::StatusOr<v1::Signal> QueryStore::FindSignal(const std::string& id) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = open_.find(id);
    if (it != open_.end()) return it->second;
  }
  auto stored = store_->Get(absl::StrCat("s/", id));
  if (!stored.ok()) return absl::NotFoundError(absl::StrCat("no signal with id \"", id, "\""));
  v1::Signal sig;
  sig.ParseFromString(*stored);
  return sig;
}

std::vector<std::pair<std::string, v1::SignalEvent>> QueryStore::EventsAfter(
    const std::string& cursor, absl::Duration wait) {
  uint64_t after = 0;
  {
    absl::MutexLock lock(&mu_);
    std::pair<std::string, std::string> parts = absl::StrSplit(cursor, absl::MaxSplits('-', 1));
    if (cursor.empty() || parts.first != epoch_ || !absl::SimpleAtoi(parts.second, &after)) {
      // From now (empty cursor), or from the oldest kept event (foreign or stale cursor).
      after = cursor.empty() ? next_seq_ - 1 : 0;
    }
    auto has_new = [this, after]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return next_seq_ - 1 > after || stop_.load();
    };
    mu_.AwaitWithTimeout(absl::Condition(&has_new), wait);
    std::vector<std::pair<std::string, v1::SignalEvent>> out;
    for (const auto& [seq, e] : ring_) {
      if (seq > after) out.emplace_back(absl::StrCat(epoch_, "-", seq), e);
    }
    return out;
  }
}

}  // namespace cybersyn::query
