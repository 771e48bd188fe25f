// SystemBackend: the Opsroom's Backend over the running system: reads from a QueryStore,
// authenticates with the config's operators, and issues commands through the Alerts service
// (so the web page, the CLI and gRPC clients share one authorisation and command path).
#ifndef CYBERSYN_OPSROOM_SYSTEM_BACKEND_H_
#define CYBERSYN_OPSROOM_SYSTEM_BACKEND_H_

#include <memory>

#include "alerter/alerts_service.h"
#include "alerter/authz.h"
#include "opsroom/opsroom.h"
#include "query/query_store.h"

namespace cybersyn::opsroom {

class SystemBackend : public Backend {
 public:
  // None owned; all must outlive the backend.
  SystemBackend(std::shared_ptr<const Config> config, query::QueryStore* store,
                alerter::AlertsService* alerts)
      : authz_(config), store_(store), alerts_(alerts) {}

  absl::StatusOr<v1::NodeStatus> Status(const std::string& node, int depth) override {
    return store_->Status(node, depth);
  }
  absl::StatusOr<std::vector<v1::Signal>> OpenSignals(const std::string& subtree) override {
    return store_->OpenSignals(subtree);
  }
  absl::StatusOr<v1::SeriesHistoryResponse> Series(
      const v1::SeriesHistoryRequest& request) override {
    return store_->SeriesHistory(request);
  }
  absl::StatusOr<std::vector<std::pair<std::string, v1::SignalEvent>>> EventsAfter(
      const std::string& cursor, absl::Duration wait) override {
    return store_->EventsAfter(cursor, wait);
  }
  absl::StatusOr<OperatorIdentity> Authenticate(const std::string& token) override;
  absl::StatusOr<std::string> Act(const std::string& token, v1::CommandKind kind,
                                  const std::string& signal_id, const std::string& reason,
                                  absl::Duration silence_for) override;

 private:
  alerter::Authorizer authz_;
  query::QueryStore* store_;
  alerter::AlertsService* alerts_;
};

}  // namespace cybersyn::opsroom

#endif  // CYBERSYN_OPSROOM_SYSTEM_BACKEND_H_
