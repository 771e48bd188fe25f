#include "query/query_service.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace cybersyn::query {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::StatusOr<const OperatorConfig*> QueryServiceImpl::Caller(grpc::ServerContext* ctx) const {
  auto it = ctx->client_metadata().find("authorization");
  if (it == ctx->client_metadata().end()) {
    return absl::UnauthenticatedError(
        "missing \"authorization: Bearer <token>\" metadata (pass --token or CYBERSYN_TOKEN)");
  }
  absl::string_view v(it->second.data(), it->second.size());
  if (!absl::ConsumePrefix(&v, "Bearer ")) {
    return absl::UnauthenticatedError("authorization metadata must be \"Bearer <token>\"");
  }
  const OperatorConfig* op =
      config_->FindOperatorByToken(std::string(absl::StripAsciiWhitespace(v)));
  if (op == nullptr) return absl::UnauthenticatedError("unknown token");
  return op;
}

grpc::Status QueryServiceImpl::SeriesHistory(grpc::ServerContext* ctx,
                                             const v1::SeriesHistoryRequest* req,
                                             v1::SeriesHistoryResponse* resp) {
  auto op = Caller(ctx);
  if (!op.ok()) return ToGrpc(op.status());
  if (!Hierarchy::PathIsInSubtree(req->node(), (*op)->subtree)) {
    return ToGrpc(absl::PermissionDeniedError(absl::StrCat(
        "operator ", (*op)->name, " may read ", (*op)->subtree, " only, not ", req->node())));
  }
  auto h = store_->SeriesHistory(*req);
  if (!h.ok()) return ToGrpc(h.status());
  *resp = std::move(*h);
  return grpc::Status::OK;
}

grpc::Status QueryServiceImpl::GetStatus(grpc::ServerContext* ctx, const v1::NodeStatusRequest* req,
                                         v1::NodeStatus* resp) {
  auto op = Caller(ctx);
  if (!op.ok()) return ToGrpc(op.status());
  const std::string node = req->node().empty() ? (*op)->subtree : req->node();
  if (!Hierarchy::PathIsInSubtree(node, (*op)->subtree)) {
    return ToGrpc(absl::PermissionDeniedError(
        absl::StrCat("operator ", (*op)->name, " may read ", (*op)->subtree, " only, not ", node)));
  }
  auto st = store_->Status(node, static_cast<int>(req->depth()));
  if (!st.ok()) return ToGrpc(st.status());
  *resp = std::move(*st);
  return grpc::Status::OK;
}

}  // namespace cybersyn::query
