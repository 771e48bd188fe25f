// AlertmanagerBridge: forwards algedonic signals to a Prometheus Alertmanager (v2 API,
// POST <url>/api/v2/alerts), so existing on-call routes page for them.
//
// The alerter hands it every committed transition (SignalObserver). Each open signal becomes one
// Alertmanager alert with
//   labels       alertname="CybersynSignal", signal_id, node (the level it is at now), level,
//                origin (where it happened), indicator, kind (step|slope|transient|threshold|
//                no_data), severity (critical for CRISIS, warning for ALERT)
//   annotations  summary, description (the last transition's reason), observed, forecast,
//                forecast_interval, state (firing|acknowledged|escalated), raised_at,
//                affected_nodes (the origin, then the nodes where the fault is also visible:
//                docs/attribution.md), also_visible_at (those series, when there are any)
//   startsAt     when the signal was raised; endsAt = now + 4 x resend_interval while open, so an
//                alert of a dead alerter expires on its own instead of paging forever.
// Open signals are re-posted every resend_interval (Alertmanager forgets an alert whose endsAt
// passed). A resolved signal is posted once more with endsAt = now. Labels identify an alert in
// Alertmanager, so when they change (an escalation moves `node` and `level`) the old label set is
// ended (endsAt = now) and the new one posted: the parent level's route now pages. One fault is
// one label set: an ALSO_VISIBLE transition (attribution) changes no label, so it re-posts the
// same alert with the new affected_nodes, never a second alert.
//
// Not paged: reward signals (favourable shifts: not a problem) and silenced signals (a Cybersyn
// silence mutes delivery; the alert is ended and posted again when the silence lifts).
//
// Failed posts are counted (cybersyn_alerter_alertmanager_posts_total{result="failed"}) and
// retried at the next flush; nothing is dropped while the process runs. The alerter's loop never
// waits for Alertmanager: OnCommitted only records, a background thread posts.
//
// Thread-safety: all public methods are safe from any thread.
#ifndef CYBERSYN_ALERTER_ALERTMANAGER_BRIDGE_H_
#define CYBERSYN_ALERTER_ALERTMANAGER_BRIDGE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "alerter/alerter.h"
#include "common/clock.h"
#include "common/config.h"
#include "cybersyn/v1/signal.pb.h"
#include "prometheus/registry.h"

namespace prometheus {
class Counter;
class Gauge;
}  // namespace prometheus

namespace cybersyn::alerter {

// Sends one JSON array of alerts; OK only when Alertmanager accepted it (HTTP 200).
using AlertPoster = std::function<absl::Status(const std::string& json_body)>;

// A poster over HTTP(S) to <url>/api/v2/alerts with the given timeout.
AlertPoster HttpAlertPoster(const std::string& url, absl::Duration timeout);

struct AlertmanagerBridgeOptions {
  AlertmanagerConfig config;     // url required unless `poster` is set
  Clock* clock = Clock::Real();  // not owned
  AlertPoster poster;            // empty: HttpAlertPoster(config.url, config.timeout)
  std::shared_ptr<prometheus::Registry> registry;    // null: no metrics
  absl::Duration flush_interval = absl::Seconds(1);  // background thread's cadence
};

class AlertmanagerBridge : public SignalObserver {
 public:
  static absl::StatusOr<std::unique_ptr<AlertmanagerBridge>> Create(
      AlertmanagerBridgeOptions options);
  ~AlertmanagerBridge() override;  // Stop()

  // Starts the background thread that calls Flush() every flush_interval (sooner after events).
  void Start();
  // Stops the thread after one last flush (so a resolution seen just before shutdown is sent).
  void Stop();

  // SignalObserver: called by the alerter after each committed transaction / restore / revoke.
  void OnCommitted(const std::vector<v1::SignalEvent>& events) override;
  void OnRestored(const std::vector<v1::Signal>& open) override;
  void OnRevoked(const std::vector<std::string>& signal_ids) override;

  // Posts every alert that is due at clock->Now() (new or changed signals, ended label sets,
  // open signals whose resend time came) in one request. OK when there was nothing to post or
  // the post succeeded; the poster's error otherwise (everything stays due).
  absl::Status Flush();

  // The alerts (JSON array) that Flush() would post now. For tests.
  std::string PendingBodyForTest();
  size_t tracked() const;

  // The Alertmanager labels of `signal` as sorted (name, value) pairs.
  static std::map<std::string, std::string> Labels(const v1::Signal& signal);

 private:
  struct Tracked {
    v1::Signal signal;
    std::map<std::string, std::string> posted_labels;  // empty: never posted
    int64_t next_post_ms = 0;                          // 0: due now
    uint64_t generation = 0;                           // bumped by every change
  };
  struct Ended {  // a label set to close in Alertmanager (endsAt = now)
    uint64_t seq;
    std::map<std::string, std::string> labels;
    v1::Signal signal;
  };

  struct Posted {  // what one Flush sent for an open signal
    uint64_t generation;
    std::map<std::string, std::string> labels;
    v1::Signal signal;
  };

  explicit AlertmanagerBridge(AlertmanagerBridgeOptions options);
  void Apply(const v1::Signal& signal) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndLabels(const std::map<std::string, std::string>& labels, const v1::Signal& signal)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds the body of what is due; fills the generations/seqs it covers.
  std::string BuildDue(int64_t now_ms, std::map<std::string, Posted>* open_gens,
                       std::vector<uint64_t>* ended_seqs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();

  AlertmanagerBridgeOptions opts_;
  absl::Mutex post_mu_;  // one Flush at a time
  mutable absl::Mutex mu_;
  std::map<std::string, Tracked> open_ ABSL_GUARDED_BY(mu_);  // by signal id
  std::vector<Ended> ended_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;

  prometheus::Counter* m_ok_ = nullptr;
  prometheus::Counter* m_failed_ = nullptr;
  prometheus::Counter* m_alerts_ = nullptr;
  prometheus::Gauge* m_tracked_ = nullptr;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_ALERTMANAGER_BRIDGE_H_
