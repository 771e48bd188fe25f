// IngestService: the gRPC `Ingest` service (client-streaming RecordBatch -> PublishSummary) for
// devices that push instead of speaking Kafka. Every record is validated like file input; valid
// ones are published through the Gateway, bad ones never. When any record was rejected the call
// ends with INVALID_ARGUMENT, a message naming the first bad records, and the PublishSummary
// (accepted, rejected, up to 100 RecordErrors) serialized in the status details; the accepted
// records of that stream are published all the same (and are durable as below).
//
// Acknowledgement = durability: OK (or that INVALID_ARGUMENT) is answered only once the accepted
// records of the call are on the gateway's disk, in the RocksDB store-and-forward buffer (the
// call seals the open batches and waits for the writer), or already in Kafka; a kill -9 of the
// gateway from then on loses none of them. Any other status means some of them may not be
// stored and the device must resend the whole call (a resent record that did get through is
// then published twice, under new sequence numbers): RESOURCE_EXHAUSTED when the buffer is full
// (the broker is away) for `max_wait`, DEADLINE_EXCEEDED when the buffer writer is that far
// behind, UNAVAILABLE when the buffer cannot be written or the gateway stops. No wait outlasts
// `max_wait` or the client's deadline.
// Thread-safety: gRPC calls it from its own threads; the Gateway serialises publishing.
#ifndef CYBERSYN_INGEST_INGEST_SERVICE_H_
#define CYBERSYN_INGEST_INGEST_SERVICE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "ingest/gateway.h"

namespace cybersyn::ingest {

class IngestService final : public v1::Ingest::Service {
 public:
  explicit IngestService(Gateway* gateway, absl::Duration max_wait = absl::Seconds(10))
      : gateway_(gateway), max_wait_(max_wait) {}
  grpc::Status Publish(grpc::ServerContext* context, grpc::ServerReader<v1::RecordBatch>* reader,
                       v1::PublishSummary* summary) override;

  static constexpr int kMaxErrors = 100;

 private:
  Gateway* gateway_;
  absl::Duration max_wait_;
};

// Starts a gRPC server with the service on `address` (port 0 = any); returns the server and
// writes the bound "host:port" to `bound`. `tls` (the config's listen.tls): server TLS, and
// mutual TLS with a client_ca; plaintext when unset.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartIngestServer(
    IngestService* service, const std::string& address, std::string* bound,
    const std::optional<TlsConfig>& tls = std::nullopt);

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_INGEST_SERVICE_H_
