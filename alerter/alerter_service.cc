#include "alerter/alerter_service.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace cybersyn::alerter {

absl::StatusOr<std::unique_ptr<AlerterService>> AlerterService::Start(AlerterServiceOptions o) {
  if (o.config == nullptr) return absl::InvalidArgumentError("alerter: no config");
  std::unique_ptr<AlerterService> svc(new AlerterService());
  svc->registry_ = o.registry ? o.registry : std::make_shared<prometheus::Registry>();
  if (o.run_processor) {
    AlerterOptions ao;
    ao.config = o.config;
    ao.client = o.client;
    ao.state_dir = o.state_dir;
    ao.clock = o.clock;
    ao.instance_id = o.instance_id;
    ao.registry = svc->registry_;
    ao.ensure_topics = o.ensure_topics;
    ASSIGN_OR_RETURN(svc->alerter_, Alerter::Create(std::move(ao)));
    RETURN_IF_ERROR(svc->alerter_->Start());
  }
  if (!o.listen_grpc.empty()) {
    AlertsServiceOptions so;
    so.config = o.config;
    so.client = o.client;
    so.clock = o.clock;
    so.heartbeat = o.heartbeat;
    svc->alerts_ = std::make_unique<AlertsService>(std::move(so));
    RETURN_IF_ERROR(svc->alerts_->Start());
    int port = 0;
    ASSIGN_OR_RETURN(svc->grpc_, StartGrpcServer(o.listen_grpc, o.config->listen.tls,
                                                 {svc->alerts_.get()}, &port));
    const std::string host = o.listen_grpc.substr(0, o.listen_grpc.rfind(':'));
    svc->grpc_address_ = absl::StrCat(host, ":", port);
  }
  if (!o.listen_metrics.empty()) {
    svc->http_ = std::make_unique<HttpServer>(svc->registry_);
    ASSIGN_OR_RETURN(svc->metrics_address_, svc->http_->Start(o.listen_metrics));
    svc->http_->SetReady(true);
  }
  return svc;
}

AlerterService::~AlerterService() { Stop(); }

void AlerterService::Stop() {
  if (grpc_) {
    grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc_.reset();
  }
  if (alerts_) alerts_->Stop();
  alerts_.reset();
  if (alerter_) alerter_->Stop();
  if (http_) http_->Stop();
  http_.reset();
}

absl::Status AlerterService::status() const {
  return alerter_ ? alerter_->status() : absl::OkStatus();
}

}  // namespace cybersyn::alerter
