// absl::Status -> grpc::Status at the gRPC boundary. The codes are the same numbers (Abseil
// mirrors gRPC's), so a status crosses the API unchanged.
#ifndef CYBERSYN_COMMON_GRPC_STATUS_H_
#define CYBERSYN_COMMON_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace cybersyn {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_GRPC_STATUS_H_
