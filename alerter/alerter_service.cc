#include "alerter/alerter_service.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace cybersyn::alerter {
namespace {

std::vector<grpc::Service*> Services(AlertsService* alerts, const AlerterServiceOptions& o) {
  std::vector<grpc::Service*> all = {alerts};
  all.insert(all.end(), o.extra_grpc_services.begin(), o.extra_grpc_services.end());
  return all;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AlerterService>> AlerterService::Start(AlerterServiceOptions o) {
  if (o.config == nullptr) return absl::InvalidArgumentError("alerter: no config");
  std::unique_ptr<AlerterService> svc(new AlerterService());
  svc->registry_ = o.registry ? o.registry : std::make_shared<prometheus::Registry>();
  // Created before the processor so its restore can flip /readyz; started further down.
  if (!o.listen_metrics.empty()) {
    svc->http_ = std::make_unique<HttpServer>(svc->registry_, o.config->listen.http_tls,
                                              o.config->listen.limits.max_http_body_bytes);
  }
  if (o.run_processor) {
    AlerterOptions ao;
    if (HttpServer* http = svc->http_.get()) {
      ao.on_ready = [http](bool ready) { http->SetReady(ready); };
    }
    ao.config = o.config;
    ao.client = o.client;
    ao.state_dir = o.state_dir;
    ao.clock = o.clock;
    ao.instance_id = o.instance_id;
    ao.registry = svc->registry_;
    ao.ensure_topics = o.ensure_topics;
    ao.attribution = o.attribution;
    if (o.config->alerter.alertmanager) {  // optional: forward signals to Alertmanager
      AlertmanagerBridgeOptions bo;
      bo.config = *o.config->alerter.alertmanager;
      bo.clock = o.clock;
      bo.registry = svc->registry_;
      ASSIGN_OR_RETURN(svc->bridge_, AlertmanagerBridge::Create(std::move(bo)));
      svc->bridge_->Start();
      ao.observer = svc->bridge_.get();
    }
    svc->alerter_options_ = ao;
    ASSIGN_OR_RETURN(svc->alerter_, Alerter::Create(std::move(ao)));
    RETURN_IF_ERROR(svc->alerter_->Start());
  }
  if (!o.listen_grpc.empty()) {
    AlertsServiceOptions so;
    so.config = o.config;
    so.client = o.client;
    so.clock = o.clock;
    so.heartbeat = o.heartbeat;
    so.limits = GrpcLimitsFrom(o.config->listen.limits);
    svc->alerts_ = std::make_unique<AlertsService>(std::move(so));
    RETURN_IF_ERROR(svc->alerts_->Start());
    int port = 0;
    ASSIGN_OR_RETURN(svc->grpc_, StartGrpcServer(o.listen_grpc, o.config->listen.tls,
                                                 Services(svc->alerts_.get(), o), &port,
                                                 GrpcLimitsFrom(o.config->listen.limits)));
    const std::string host = o.listen_grpc.substr(0, o.listen_grpc.rfind(':'));
    svc->grpc_address_ = absl::StrCat(host, ":", port);
  }
  if (!o.listen_metrics.empty()) {
    ASSIGN_OR_RETURN(svc->metrics_address_, svc->http_->Start(o.listen_metrics));
    // Without a processor there is no state to restore; with one, ready once it restored.
    if (!o.run_processor) svc->http_->SetReady(true);
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
  if (bridge_) bridge_->Stop();  // after the processor: its last transitions get posted
  if (http_) http_->Stop();
  http_.reset();
}

absl::Status AlerterService::status() const {
  return alerter_ ? alerter_->status() : absl::OkStatus();
}

absl::Status AlerterService::RestartProcessor() {
  if (alerter_ == nullptr) return absl::FailedPreconditionError("alerter: no processor to restart");
  alerter_->Stop();
  alerter_.reset();
  if (http_) http_->SetReady(false);  // ready again once the new processor restored
  ASSIGN_OR_RETURN(alerter_, Alerter::Create(alerter_options_));
  return alerter_->Start();
}

}  // namespace cybersyn::alerter
