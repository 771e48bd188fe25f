// The gRPC Query service over a QueryStore: series history and node status. Every call needs
// "authorization: Bearer <token>" of a configured operator; a node outside the operator's
// subtree is PERMISSION_DENIED (status of the root is trimmed to the operator's scope when the
// scope is below it: the request's node defaults to the operator's subtree).
#ifndef CYBERSYN_QUERY_QUERY_SERVICE_H_
#define CYBERSYN_QUERY_QUERY_SERVICE_H_

#include <memory>

#include "common/config.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "query/query_store.h"

namespace cybersyn::query {

class QueryServiceImpl final : public v1::Query::Service {
 public:
  // Neither is owned; both must outlive the service.
  QueryServiceImpl(const Config* config, QueryStore* store) : config_(config), store_(store) {}

  grpc::Status SeriesHistory(grpc::ServerContext* ctx, const v1::SeriesHistoryRequest* req,
                             v1::SeriesHistoryResponse* resp) override;
  grpc::Status GetStatus(grpc::ServerContext* ctx, const v1::NodeStatusRequest* req,
                         v1::NodeStatus* resp) override;

 private:
  absl::StatusOr<const OperatorConfig*> Caller(grpc::ServerContext* ctx) const;
  const Config* config_;
  QueryStore* store_;
};

// absl::Status -> grpc::Status (the codes are the same numbers).
grpc::Status ToGrpc(const absl::Status& s);

}  // namespace cybersyn::query

#endif  // CYBERSYN_QUERY_QUERY_SERVICE_H_
