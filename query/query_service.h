// The gRPC Query service over a QueryStore: series history and node status. Every call needs
// "authorization: Bearer <token>" of a configured operator; a node outside the operator's
// subtree is PERMISSION_DENIED (status of the root is trimmed to the operator's scope when the
// scope is below it: the request's node defaults to the operator's subtree).
#ifndef CYBERSYN_QUERY_QUERY_SERVICE_H_
#define CYBERSYN_QUERY_QUERY_SERVICE_H_

#include <memory>

#include "alerter/authz.h"
#include "common/config.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "query/query_store.h"

namespace cybersyn::query {

class QueryServiceImpl final : public v1::Query::Service {
 public:
  // `store` is not owned and must outlive the service.
  QueryServiceImpl(std::shared_ptr<const Config> config, QueryStore* store)
      : authz_(std::move(config)), store_(store) {}

  grpc::Status SeriesHistory(grpc::ServerContext* ctx, const v1::SeriesHistoryRequest* req,
                             v1::SeriesHistoryResponse* resp) override;
  grpc::Status GetStatus(grpc::ServerContext* ctx, const v1::NodeStatusRequest* req,
                         v1::NodeStatus* resp) override;

 private:
  absl::StatusOr<const OperatorConfig*> Caller(grpc::ServerContext* ctx) const;
  alerter::Authorizer authz_;
  QueryStore* store_;
};

}  // namespace cybersyn::query

#endif  // CYBERSYN_QUERY_QUERY_SERVICE_H_
