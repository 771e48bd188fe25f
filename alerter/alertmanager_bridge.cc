#include "alerter/alertmanager_bridge.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "spdlog/spdlog.h"

namespace cybersyn::alerter {
namespace {

// Alertmanager keeps an alert until its endsAt; 4 resend intervals survive a few lost posts
// (Prometheus uses the same factor for its rule evaluations).
constexpr int kEndsAtResends = 4;

std::string Rfc3339(int64_t ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

// "SIGNAL_KIND_NO_DATA" -> "no_data".
std::string Short(const std::string& enum_name, absl::string_view prefix) {
  std::string s = enum_name.substr(std::min(enum_name.size(), prefix.size()));
  return absl::AsciiStrToLower(s);
}

bool Pageable(const v1::Signal& s, int64_t now_ms) {
  return s.state() != v1::SIGNAL_STATE_RESOLVED && s.kind() != v1::SIGNAL_KIND_REWARD &&
         s.severity() != v1::SEVERITY_REWARD && s.silenced_until_ms() <= now_ms;
}

// The nodes a fault shows at (docs/attribution.md): where it happened, then every node it also
// explains a series of, once each, in attribution order.
std::string AffectedNodes(const v1::Signal& s) {
  std::vector<std::string> nodes = {s.origin_node()};
  for (const v1::AlsoVisible& a : s.also_visible_at()) {
    if (std::find(nodes.begin(), nodes.end(), a.series().node()) == nodes.end()) {
      nodes.push_back(a.series().node());
    }
  }
  return absl::StrJoin(nodes, ", ");
}

// "cl/mining energy (10 s), cl/mining/chuquicamata productivity (10 s)"; empty when none.
std::string AlsoVisibleAt(const v1::Signal& s) {
  std::vector<std::string> out;
  for (const v1::AlsoVisible& a : s.also_visible_at()) {
    out.push_back(absl::StrCat(a.series().node(), " ", a.series().indicator(), " (",
                               a.series().window_ms() / 1000, " s)"));
  }
  return absl::StrJoin(out, ", ");
}

nlohmann::json AlertJson(const std::map<std::string, std::string>& labels, const v1::Signal& s,
                         int64_t ends_at_ms) {
  nlohmann::json a;
  a["labels"] = labels;
  const std::string kind = Short(v1::SignalKind_Name(s.kind()), "SIGNAL_KIND_");
  std::string reason;
  if (s.history_size() > 0) reason = s.history(s.history_size() - 1).reason();
  for (int i = s.history_size() - 1; i >= 0 && reason.empty(); --i) reason = s.history(i).reason();
  a["annotations"] = {
      {"summary",
       absl::StrFormat("%s in %s at %s: observed %.4g vs forecast %.4g", kind,
                       s.series().indicator(), s.origin_node(), s.observed(), s.forecast())},
      {"description", reason.empty() ? kind : reason},
      {"observed", absl::StrFormat("%.6g", s.observed())},
      {"forecast", absl::StrFormat("%.6g", s.forecast())},
      {"forecast_interval",
       absl::StrFormat("[%.6g, %.6g]", s.forecast_lower(), s.forecast_upper())},
      {"state", Short(v1::SignalState_Name(s.state()), "SIGNAL_STATE_")},
      {"raised_at", Rfc3339(s.raised_at_ms())},
      {"affected_nodes", AffectedNodes(s)},
  };
  if (s.also_visible_at_size() > 0) a["annotations"]["also_visible_at"] = AlsoVisibleAt(s);
  a["startsAt"] = Rfc3339(s.raised_at_ms());
  a["endsAt"] = Rfc3339(ends_at_ms);
  return a;
}

}  // namespace

AlertPoster HttpAlertPoster(const std::string& url, absl::Duration timeout) {
  std::string base = url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  // "http://host:port/prefix": the client takes scheme://host:port, the path keeps the prefix
  // (Alertmanager behind a reverse proxy with --web.route-prefix).
  const size_t slash =
      base.find('/', base.find("://") == std::string::npos ? 0 : base.find("://") + 3);
  const std::string origin = base.substr(0, slash);
  const std::string path =
      (slash == std::string::npos ? std::string() : base.substr(slash)) + "/api/v2/alerts";
  return [base, origin, path, timeout](const std::string& body) -> absl::Status {
    httplib::Client client(origin);
    const auto usec = absl::ToInt64Microseconds(timeout);
    client.set_connection_timeout(usec / 1000000, usec % 1000000);
    client.set_read_timeout(usec / 1000000, usec % 1000000);
    client.set_write_timeout(usec / 1000000, usec % 1000000);
    auto res = client.Post(path, body, "application/json");
    if (!res) {
      return absl::UnavailableError(absl::StrCat(
          "Alertmanager ", base, "/api/v2/alerts unreachable: ", httplib::to_string(res.error())));
    }
    if (res->status != 200) {
      return absl::UnavailableError(absl::StrCat("Alertmanager ", base, "/api/v2/alerts answered ",
                                                 res->status, ": ", res->body.substr(0, 200)));
    }
    return absl::OkStatus();
  };
}

std::map<std::string, std::string> AlertmanagerBridge::Labels(const v1::Signal& s) {
  const bool crisis = s.severity() == v1::SEVERITY_CRISIS;
  return {
      {"alertname", "CybersynSignal"},
      {"signal_id", s.id()},
      {"node", s.current_node().empty() ? s.origin_node() : s.current_node()},
      {"level", s.current_level_name()},
      {"origin", s.origin_node()},
      {"indicator", s.series().indicator()},
      {"kind", Short(v1::SignalKind_Name(s.kind()), "SIGNAL_KIND_")},
      {"severity", crisis ? "critical" : "warning"},
  };
}

absl::StatusOr<std::unique_ptr<AlertmanagerBridge>> AlertmanagerBridge::Create(
    AlertmanagerBridgeOptions o) {
  if (!o.poster) {
    if (o.config.url.empty()) {
      return absl::InvalidArgumentError("alerter.alertmanager.url: required to forward signals");
    }
    o.poster = HttpAlertPoster(o.config.url, o.config.timeout);
  }
  if (o.clock == nullptr) o.clock = Clock::Real();
  if (o.config.resend_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("alerter.alertmanager.resend_interval must be positive");
  }
  return std::unique_ptr<AlertmanagerBridge>(new AlertmanagerBridge(std::move(o)));
}

AlertmanagerBridge::AlertmanagerBridge(AlertmanagerBridgeOptions o) : opts_(std::move(o)) {
  if (opts_.registry == nullptr) return;
  auto& posts = prometheus::BuildCounter()
                    .Name("cybersyn_alerter_alertmanager_posts_total")
                    .Help("POSTs to Alertmanager's /api/v2/alerts, by result (ok|failed)")
                    .Register(*opts_.registry);
  m_ok_ = &posts.Add({{"result", "ok"}});
  m_failed_ = &posts.Add({{"result", "failed"}});
  m_alerts_ = &prometheus::BuildCounter()
                   .Name("cybersyn_alerter_alertmanager_alerts_sent_total")
                   .Help("Alerts (firing or ended) accepted by Alertmanager")
                   .Register(*opts_.registry)
                   .Add({});
  m_tracked_ = &prometheus::BuildGauge()
                    .Name("cybersyn_alerter_alertmanager_open_alerts")
                    .Help("Signals this instance keeps firing in Alertmanager")
                    .Register(*opts_.registry)
                    .Add({});
}

AlertmanagerBridge::~AlertmanagerBridge() { Stop(); }

void AlertmanagerBridge::Start() {
  if (thread_.joinable()) return;
  {
    absl::MutexLock l(&mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void AlertmanagerBridge::Stop() {
  if (!thread_.joinable()) return;
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void AlertmanagerBridge::Loop() {
  for (;;) {
    bool stopping = false;
    {
      absl::MutexLock l(&mu_);
      auto woken = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return wake_ || stop_; };
      mu_.AwaitWithTimeout(absl::Condition(&woken), opts_.flush_interval);
      wake_ = false;
      stopping = stop_;
    }
    if (absl::Status s = Flush(); !s.ok()) {
      spdlog::warn("alertmanager bridge: {} (will retry)", s.ToString());
    }
    if (stopping) return;
  }
}

void AlertmanagerBridge::EndLabels(const std::map<std::string, std::string>& labels,
                                   const v1::Signal& signal) {
  ended_.push_back({next_seq_++, labels, signal});
}

void AlertmanagerBridge::Apply(const v1::Signal& s) {
  const int64_t now = opts_.clock->NowMillis();
  auto it = open_.find(s.id());
  if (!Pageable(s, now)) {
    if (it != open_.end()) {
      if (!it->second.posted_labels.empty()) EndLabels(it->second.posted_labels, s);
      open_.erase(it);
    }
    return;
  }
  if (it == open_.end()) it = open_.emplace(s.id(), Tracked{}).first;
  Tracked& t = it->second;
  if (t.signal.revision() > s.revision()) return;  // an older event (restore after a newer one)
  const auto labels = Labels(s);
  if (!t.posted_labels.empty() && t.posted_labels != labels) {
    EndLabels(t.posted_labels, t.signal);
    t.posted_labels.clear();
  }
  t.signal = s;
  t.next_post_ms = 0;
  ++t.generation;
}

void AlertmanagerBridge::OnCommitted(const std::vector<v1::SignalEvent>& events) {
  absl::MutexLock l(&mu_);
  for (const v1::SignalEvent& e : events) Apply(e.signal());
  wake_ = true;
}

void AlertmanagerBridge::OnRestored(const std::vector<v1::Signal>& open) {
  absl::MutexLock l(&mu_);
  for (const v1::Signal& s : open) Apply(s);
  wake_ = true;
}

void AlertmanagerBridge::OnRevoked(const std::vector<std::string>& ids) {
  absl::MutexLock l(&mu_);
  for (const std::string& id : ids) open_.erase(id);  // the new owner keeps them firing
}

std::string AlertmanagerBridge::BuildDue(int64_t now, std::map<std::string, Posted>* open_gens,
                                         std::vector<uint64_t>* ended_seqs) {
  nlohmann::json body = nlohmann::json::array();
  const int64_t resend = absl::ToInt64Milliseconds(opts_.config.resend_interval);
  for (const Ended& e : ended_) {
    body.push_back(AlertJson(e.labels, e.signal, now));
    ended_seqs->push_back(e.seq);
  }
  for (auto& [id, t] : open_) {
    // A silence that lifted by itself (UNSILENCED comes later from the alerter) or began.
    if (!Pageable(t.signal, now)) continue;
    if (t.next_post_ms != 0 && now < t.next_post_ms) continue;
    auto labels = Labels(t.signal);
    body.push_back(AlertJson(labels, t.signal, now + kEndsAtResends * resend));
    (*open_gens)[id] = Posted{t.generation, std::move(labels), t.signal};
  }
  return body.empty() ? std::string() : body.dump();
}

std::string AlertmanagerBridge::PendingBodyForTest() {
  std::map<std::string, Posted> gens;
  std::vector<uint64_t> seqs;
  absl::MutexLock l(&mu_);
  return BuildDue(opts_.clock->NowMillis(), &gens, &seqs);
}

size_t AlertmanagerBridge::tracked() const {
  absl::MutexLock l(&mu_);
  return open_.size();
}

absl::Status AlertmanagerBridge::Flush() {
  absl::MutexLock post_lock(&post_mu_);
  const int64_t now = opts_.clock->NowMillis();
  std::map<std::string, Posted> gens;
  std::vector<uint64_t> seqs;
  std::string body;
  {
    absl::MutexLock l(&mu_);
    body = BuildDue(now, &gens, &seqs);
  }
  if (body.empty()) return absl::OkStatus();
  absl::Status st = opts_.poster(body);
  if (!st.ok()) {
    if (m_failed_) m_failed_->Increment();
    return st;
  }
  if (m_ok_) m_ok_->Increment();
  if (m_alerts_) m_alerts_->Increment(static_cast<double>(gens.size() + seqs.size()));
  absl::MutexLock l(&mu_);
  const int64_t resend = absl::ToInt64Milliseconds(opts_.config.resend_interval);
  for (auto& [id, posted] : gens) {
    auto it = open_.find(id);
    if (it != open_.end() && it->second.generation == posted.generation) {
      it->second.next_post_ms = now + resend;
      it->second.posted_labels = std::move(posted.labels);
      continue;
    }
    // Changed while posting: Alertmanager now holds `posted.labels`. Keep them if the signal
    // still has them (it is due again anyway), otherwise end them.
    if (it != open_.end() && Labels(it->second.signal) == posted.labels) {
      it->second.posted_labels = std::move(posted.labels);
    } else {
      EndLabels(posted.labels, posted.signal);
      wake_ = true;
    }
  }
  std::erase_if(ended_, [&](const Ended& e) {
    return std::find(seqs.begin(), seqs.end(), e.seq) != seqs.end();
  });
  if (m_tracked_) m_tracked_->Set(static_cast<double>(open_.size()));
  return absl::OkStatus();
}

}  // namespace cybersyn::alerter
