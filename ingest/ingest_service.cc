#include "ingest/ingest_service.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/status.h"

namespace cybersyn::ingest {
namespace {

// The status for a device whose records may not be stored: it must resend them.
grpc::Status NotStored(const absl::Status& s) {
  grpc::StatusCode code = grpc::StatusCode::UNAVAILABLE;
  if (absl::IsResourceExhausted(s)) code = grpc::StatusCode::RESOURCE_EXHAUSTED;
  if (absl::IsDeadlineExceeded(s)) code = grpc::StatusCode::DEADLINE_EXCEEDED;
  return grpc::Status(
      code, absl::StrCat("the records of this call may not be stored, resend them: ", s.message()));
}

}  // namespace

grpc::Status IngestService::Publish(grpc::ServerContext* context,
                                    grpc::ServerReader<v1::RecordBatch>* reader,
                                    v1::PublishSummary* summary) {
  v1::RecordBatch batch;
  uint32_t batch_index = 0;
  std::string first;
  // The client's deadline, if it set one, bounds every wait too.
  const auto client_deadline = context->deadline();
  const bool has_client_deadline = client_deadline != std::chrono::system_clock::time_point::max();
  auto deadline = [&] {
    const absl::Time d = absl::Now() + max_wait_;
    return has_client_deadline ? std::min(d, absl::FromChrono(client_deadline)) : d;
  };
  while (reader->Read(&batch)) {
    const absl::Time feed_deadline = deadline();
    for (int i = 0; i < batch.records_size(); ++i) {
      v1::Record& r = *batch.mutable_records(i);
      // Identity is the gateway's business: whatever the device sent is replaced.
      r.clear_gateway_id();
      r.clear_sequence();
      RecordError err;
      absl::Status s = gateway_->Feed(r, &err, feed_deadline);
      if (s.ok()) {
        summary->set_accepted(summary->accepted() + 1);
        continue;
      }
      if (!absl::IsInvalidArgument(s)) return NotStored(s);
      summary->set_rejected(summary->rejected() + 1);
      if (summary->errors_size() < kMaxErrors) {
        v1::RecordError* e = summary->add_errors();
        e->set_batch(batch_index);
        e->set_index(static_cast<uint32_t>(i));
        e->set_field(err.field);
        e->set_problem(err.problem);
      }
      if (summary->rejected() <= 3) {
        absl::StrAppend(&first, first.empty() ? "" : "; ", "batch ", batch_index, " record ", i,
                        ": ", err.field, ": ", err.problem);
      }
    }
    ++batch_index;
  }
  // Acknowledge only what is on disk: the records may still be in an open batch in memory.
  if (summary->accepted() > 0) {
    if (absl::Status s = gateway_->Persist(deadline()); !s.ok()) {
      return NotStored(s);
    }
  }
  if (summary->rejected() > 0) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat(summary->rejected(), " of ", summary->accepted() + summary->rejected(),
                     " records rejected (the others were accepted): ", first),
        summary->SerializeAsString());
  }
  return grpc::Status::OK;
}

absl::StatusOr<std::unique_ptr<grpc::Server>> StartIngestServer(
    IngestService* service, const std::string& address, std::string* bound,
    const std::optional<TlsConfig>& tls) {
  ASSIGN_OR_RETURN(GrpcServer served, ServeGrpc(address, {service}, {.tls = tls}));
  *bound = served.address;
  return std::move(served.server);
}

}  // namespace cybersyn::ingest
