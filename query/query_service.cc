#include "query/query_service.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"

namespace cybersyn::query {

absl::StatusOr<const OperatorConfig*> QueryServiceImpl::Caller(grpc::ServerContext* ctx) const {
  auto it = ctx->client_metadata().find("authorization");
  const std::string header =
      it == ctx->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
  return authz_.Authenticate(header);
}

grpc::Status QueryServiceImpl::SeriesHistory(grpc::ServerContext* ctx,
                                             const v1::SeriesHistoryRequest* req,
                                             v1::SeriesHistoryResponse* resp) {
  auto op = Caller(ctx);
  if (!op.ok()) return ToGrpcStatus(op.status());
  if (!Hierarchy::PathIsInSubtree(req->node(), (*op)->subtree)) {
    return ToGrpcStatus(absl::PermissionDeniedError(absl::StrCat(
        "operator ", (*op)->name, " may read ", (*op)->subtree, " only, not ", req->node())));
  }
  auto h = store_->SeriesHistory(*req);
  if (!h.ok()) return ToGrpcStatus(h.status());
  *resp = std::move(*h);
  return grpc::Status::OK;
}

grpc::Status QueryServiceImpl::GetStatus(grpc::ServerContext* ctx, const v1::NodeStatusRequest* req,
                                         v1::NodeStatus* resp) {
  auto op = Caller(ctx);
  if (!op.ok()) return ToGrpcStatus(op.status());
  const std::string node = req->node().empty() ? (*op)->subtree : req->node();
  if (!Hierarchy::PathIsInSubtree(node, (*op)->subtree)) {
    return ToGrpcStatus(absl::PermissionDeniedError(
        absl::StrCat("operator ", (*op)->name, " may read ", (*op)->subtree, " only, not ", node)));
  }
  auto st = store_->Status(node, static_cast<int>(req->depth()));
  if (!st.ok()) return ToGrpcStatus(st.status());
  *resp = std::move(*st);
  return grpc::Status::OK;
}

}  // namespace cybersyn::query
