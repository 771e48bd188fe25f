#include "opsroom/opsroom_server.h"

#include "common/status.h"
#include "opsroom/opsroom.h"

namespace cybersyn::opsroom {

absl::StatusOr<std::unique_ptr<OpsroomServer>> OpsroomServer::Create(OpsroomServerOptions o) {
  if (o.config == nullptr) return absl::InvalidArgumentError("opsroom: no config");
  if (o.registry == nullptr) o.registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<OpsroomServer> s(new OpsroomServer(std::move(o)));
  ASSIGN_OR_RETURN(s->store_, query::QueryStore::Start({s->opts_.config, s->opts_.client,
                                                        s->opts_.config->kafka.topic_prefix}));
  s->query_ = std::make_unique<query::QueryServiceImpl>(s->opts_.config, s->store_.get());
  return s;
}

OpsroomServer::~OpsroomServer() { Stop(); }

absl::StatusOr<std::string> OpsroomServer::Serve(const std::string& address,
                                                 alerter::AlertsService* alerts) {
  if (alerts == nullptr) {
    return absl::FailedPreconditionError(
        "the Opsroom needs the Alerts service for operator actions (serve gRPC too)");
  }
  if (http_ != nullptr) return absl::FailedPreconditionError("opsroom: already serving");
  backend_ = std::make_unique<SystemBackend>(opts_.config, store_.get(), alerts);
  http_ = std::make_unique<HttpServer>(opts_.registry, opts_.config->listen.http_tls,
                                       opts_.config->listen.limits.max_http_body_bytes);
  RegisterOpsroom(http_->raw(), backend_.get());
  auto addr = http_->Start(address);
  if (!addr.ok()) return Annotate(addr.status(), "serving the Opsroom");
  http_->SetReady(true);
  return addr;
}

void OpsroomServer::Stop() {
  if (http_) http_->Stop();
  http_.reset();
  if (store_) store_->Stop();
}

}  // namespace cybersyn::opsroom
