// IngestService: the gRPC `Ingest` service (client-streaming RecordBatch -> PublishSummary) for
// devices that push instead of speaking Kafka. Every record is validated like file input; valid
// ones are published through the Gateway, bad ones never. When any record was rejected the call
// ends with INVALID_ARGUMENT, a message naming the first bad records, and the PublishSummary
// (accepted, rejected, up to 100 RecordErrors) serialized in the status details; the accepted
// records of that stream are published all the same.
// Thread-safety: gRPC calls it from its own threads; the Gateway serialises publishing.
#ifndef CYBERSYN_INGEST_INGEST_SERVICE_H_
#define CYBERSYN_INGEST_INGEST_SERVICE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "common/config.h"
#include "ingest/gateway.h"

namespace cybersyn::ingest {

class IngestService final : public v1::Ingest::Service {
 public:
  explicit IngestService(Gateway* gateway) : gateway_(gateway) {}
  grpc::Status Publish(grpc::ServerContext* context, grpc::ServerReader<v1::RecordBatch>* reader,
                       v1::PublishSummary* summary) override;

  static constexpr int kMaxErrors = 100;

 private:
  Gateway* gateway_;
};

// Starts a gRPC server with the service on `address` (port 0 = any); returns the server and
// writes the bound "host:port" to `bound`. `tls` (the config's listen.tls): server TLS, and
// mutual TLS with a client_ca; plaintext when unset.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartIngestServer(
    IngestService* service, const std::string& address, std::string* bound,
    const std::optional<TlsConfig>& tls = std::nullopt);

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_INGEST_SERVICE_H_
