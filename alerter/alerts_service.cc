#include "alerter/alerts_service.h"

#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/grpc_server.h"
#include "common/grpc_status.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "common/status.h"
#include "cybersyn/v1/command.pb.h"
#include "spdlog/spdlog.h"

namespace cybersyn::alerter {
namespace {

bool Muted(const v1::SignalEvent& e) {
  const auto k = e.transition().kind();
  return (k == v1::TRANSITION_KIND_RAISED || k == v1::TRANSITION_KIND_UPDATED) &&
         e.signal().silenced_until_ms() > e.transition().at_ms();
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& s) { return ToGrpcStatus(s); }

std::string EncodeCursor(const std::map<int32_t, int64_t>& next_offsets) {
  std::vector<std::string> parts;
  for (const auto& [p, o] : next_offsets) parts.push_back(absl::StrCat(p, "=", o));
  return absl::StrCat("v1:", absl::StrJoin(parts, ","));
}

absl::StatusOr<std::map<int32_t, int64_t>> DecodeCursor(absl::string_view cursor) {
  if (!absl::ConsumePrefix(&cursor, "v1:")) {
    return absl::InvalidArgumentError("cursor: not a cursor from this service");
  }
  std::map<int32_t, int64_t> out;
  if (cursor.empty()) return out;
  for (absl::string_view part : absl::StrSplit(cursor, ',')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(part, '=');
    int32_t p = 0;
    int64_t o = 0;
    if (!absl::SimpleAtoi(kv.first, &p) || !absl::SimpleAtoi(kv.second, &o) || p < 0 || o < 0) {
      return absl::InvalidArgumentError(absl::StrCat("cursor: bad entry \"", part, "\""));
    }
    out[p] = o;
  }
  return out;
}

AlertsService::AlertsService(AlertsServiceOptions options)
    : opts_(std::move(options)),
      names_(opts_.config->kafka.topic_prefix),
      authz_(opts_.config),
      watch_streams_(opts_.limits.max_watch_streams, opts_.limits.max_watch_streams_per_operator),
      actions_(opts_.limits.actions, opts_.clock) {
  std::random_device rd;
  nonce_ = (uint64_t{rd()} << 32) ^ rd();
}

AlertsService::~AlertsService() { Stop(); }

absl::Status AlertsService::Start() {
  ASSIGN_OR_RETURN(ClusterInfo info, DescribeCluster(opts_.client));
  auto it = info.topics.find(names_.signals);
  if (it == info.topics.end()) {
    return absl::FailedPreconditionError(absl::StrCat("topic ", names_.signals, " missing"));
  }
  partitions_ = it->second;
  ProducerOptions po;
  po.client = opts_.client;
  ASSIGN_OR_RETURN(producer_, KafkaProducer::Create(po));
  view_thread_ = std::thread([this] { ViewLoop(); });
  return absl::OkStatus();
}

void AlertsService::Stop() {
  stop_ = true;
  if (view_thread_.joinable()) view_thread_.join();
  if (producer_) (void)producer_->Flush(absl::Seconds(5));
  producer_.reset();
}

void AlertsService::ViewLoop() {
  ConsumerOptions co;
  co.client = opts_.client;
  co.client.stats = nullptr;  // one consumer per stream: no per-stream series
  co.read_committed = true;
  auto consumer = KafkaConsumer::Create(co);
  if (!consumer.ok()) {
    spdlog::error("alerts view: {}", consumer.status().ToString());
    return;
  }
  std::vector<TopicPartitionOffset> tps;
  for (int p = 0; p < partitions_; ++p) tps.push_back({names_.signals, p, -2 /* beginning */});
  if (absl::Status s = (*consumer)->Assign(tps); !s.ok()) {
    spdlog::error("alerts view: {}", s.ToString());
    return;
  }
  while (!stop_) {
    auto msgs = (*consumer)->ConsumeBatch(1000, absl::Milliseconds(100));
    if (!msgs.ok()) {
      spdlog::warn("alerts view: {}", msgs.status().ToString());
      continue;
    }
    absl::MutexLock l(&mu_);
    for (const ConsumedMessage& m : *msgs) {
      v1::SignalEvent e;
      if (!e.ParseFromArray(m.value().data(), static_cast<int>(m.value().size()))) continue;
      if (e.signal().state() == v1::SIGNAL_STATE_RESOLVED) {
        open_.erase(e.signal().id());
      } else {
        auto& cur = open_[e.signal().id()];
        if (e.signal().revision() >= cur.revision()) cur = e.signal();
      }
    }
  }
  (void)(*consumer)->Close();
}

absl::StatusOr<const OperatorConfig*> AlertsService::Caller(grpc::ServerContext* ctx) const {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return authz_.Authenticate("");
  return authz_.Authenticate(absl::string_view(it->second.data(), it->second.size()));
}

grpc::Status AlertsService::Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                                  grpc::ServerWriter<v1::WatchEvent>* writer) {
  auto op = Caller(ctx);
  if (!op.ok()) return ToGrpc(op.status());
  auto subtree = authz_.ResolveSubtree(**op, req->subtree());
  if (!subtree.ok()) return ToGrpc(subtree.status());
  // Every stream holds a Kafka consumer: bounded per operator and per process.
  auto lease = watch_streams_.Acquire((*op)->name);
  if (!lease.ok()) return ToGrpc(lease.status());
  ConsumerOptions co;
  co.client = opts_.client;
  co.read_committed = true;
  auto consumer = KafkaConsumer::Create(co);
  if (!consumer.ok()) return ToGrpc(consumer.status());
  std::map<int32_t, int64_t> next;
  if (!req->from_cursor().empty()) {
    auto c = DecodeCursor(req->from_cursor());
    if (!c.ok()) return ToGrpc(c.status());
    next = *c;
  }
  for (int p = 0; p < partitions_; ++p) {
    if (next.contains(p)) continue;
    // Not in the cursor (or no cursor): from now, or from the start of a partition the cursor
    // did not know yet.
    if (!req->from_cursor().empty()) {
      next[p] = 0;
      continue;
    }
    auto marks = (*consumer)->Watermarks(names_.signals, p, absl::Seconds(10));
    if (!marks.ok()) return ToGrpc(marks.status());
    next[p] = marks->second;
  }
  std::vector<TopicPartitionOffset> tps;
  for (const auto& [p, o] : next) tps.push_back({names_.signals, p, o});
  if (absl::Status s = (*consumer)->Assign(tps); !s.ok()) return ToGrpc(s);
  const std::string scope = *subtree;
  auto in_scope = [&](const v1::Signal& s) {
    return Hierarchy::PathIsInSubtree(s.origin_node(), scope);
  };
  if (req->replay_open()) {
    std::vector<v1::Signal> open;
    {
      absl::MutexLock l(&mu_);
      for (const auto& [id, s] : open_) {
        if (in_scope(s)) open.push_back(s);
      }
    }
    for (const v1::Signal& s : open) {
      v1::WatchEvent we;
      *we.mutable_event()->mutable_signal() = s;
      if (s.history_size() > 0) *we.mutable_event()->mutable_transition() = *s.history().rbegin();
      we.set_cursor(EncodeCursor(next));
      if (!writer->Write(we)) return grpc::Status::OK;
    }
  }
  {
    v1::WatchEvent hb;  // the client has a cursor before the first event
    hb.set_heartbeat(true);
    hb.set_cursor(EncodeCursor(next));
    if (!writer->Write(hb)) return grpc::Status::OK;
  }
  absl::Time last_write = absl::Now();
  const absl::Duration poll = std::min(opts_.heartbeat, absl::Milliseconds(100));
  while (!ctx->IsCancelled() && !stop_) {
    auto msgs = (*consumer)->ConsumeBatch(100, poll);
    if (!msgs.ok()) return ToGrpc(msgs.status());
    for (const ConsumedMessage& m : *msgs) {
      next[m.partition()] = m.offset() + 1;
      v1::WatchEvent we;
      if (!we.mutable_event()->ParseFromArray(m.value().data(),
                                              static_cast<int>(m.value().size()))) {
        continue;
      }
      if (!in_scope(we.event().signal()) || Muted(we.event())) continue;
      we.set_cursor(EncodeCursor(next));
      if (!writer->Write(we)) return grpc::Status::OK;
      last_write = absl::Now();
    }
    if (absl::Now() - last_write >= opts_.heartbeat) {
      v1::WatchEvent hb;
      hb.set_heartbeat(true);
      hb.set_cursor(EncodeCursor(next));
      if (!writer->Write(hb)) return grpc::Status::OK;
      last_write = absl::Now();
    }
  }
  (void)(*consumer)->Close();
  return grpc::Status::OK;
}

grpc::Status AlertsService::List(grpc::ServerContext* ctx, const v1::ListRequest* req,
                                 v1::ListResponse* resp) {
  auto op = Caller(ctx);
  if (!op.ok()) return ToGrpc(op.status());
  auto subtree = authz_.ResolveSubtree(**op, req->subtree());
  if (!subtree.ok()) return ToGrpc(subtree.status());
  absl::MutexLock l(&mu_);
  for (const auto& [id, s] : open_) {
    if (!Hierarchy::PathIsInSubtree(s.origin_node(), *subtree)) continue;
    if (req->states_size() > 0 &&
        std::find(req->states().begin(), req->states().end(), s.state()) == req->states().end()) {
      continue;
    }
    *resp->add_signals() = s;
    if (req->limit() > 0 && static_cast<uint32_t>(resp->signals_size()) >= req->limit()) break;
  }
  return grpc::Status::OK;
}

grpc::Status AlertsService::Act(grpc::ServerContext* ctx, v1::CommandKind kind,
                                const std::string& signal_id, const std::string& reason,
                                int64_t silence_for_ms, v1::ActResponse* resp) {
  auto op = Caller(ctx);
  if (!op.ok()) return ToGrpc(op.status());
  auto id = Issue(**op, kind, signal_id, reason, silence_for_ms);
  if (!id.ok()) return ToGrpc(id.status());
  resp->set_command_id(*id);
  return grpc::Status::OK;
}

absl::StatusOr<std::string> AlertsService::Issue(const OperatorConfig& op, v1::CommandKind kind,
                                                 const std::string& signal_id,
                                                 const std::string& reason,
                                                 int64_t silence_for_ms) {
  if (signal_id.empty()) return absl::InvalidArgumentError("signal_id is required");
  if (producer_ == nullptr) return absl::FailedPreconditionError("alerts service not started");
  RETURN_IF_ERROR(actions_.Acquire(op.name, absl::StrCat("operator ", op.name)));
  std::string origin;
  const absl::Time deadline = absl::Now() + opts_.view_wait;
  {
    absl::MutexLock l(&mu_);
    auto found = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_.contains(signal_id); };
    // A signal raised a moment ago may not have reached the view yet.
    while (!found() && absl::Now() < deadline) {
      mu_.AwaitWithDeadline(absl::Condition(&found), deadline);
    }
    if (!found()) return absl::NotFoundError(absl::StrCat("no open signal ", signal_id));
    origin = open_.at(signal_id).origin_node();
  }
  RETURN_IF_ERROR(authz_.CheckAct(op, origin));
  v1::Command c;
  c.set_id(absl::StrFormat("cmd-%016x-%d", nonce_, seq_.fetch_add(1)));
  c.set_kind(kind);
  c.set_signal_id(signal_id);
  c.set_operator_id(op.name);
  c.set_operator_scope(op.subtree);
  c.set_reason(reason);
  c.set_silence_for_ms(silence_for_ms);
  c.set_issued_at_ms(opts_.clock->NowMillis());
  c.set_signal_node(origin);
  RETURN_IF_ERROR(producer_->Produce(names_.commands, -1, origin, c.SerializeAsString()));
  RETURN_IF_ERROR(producer_->Flush(absl::Seconds(10)));
  spdlog::info("operator {} {} signal {} (command {})", op.name, v1::CommandKind_Name(kind),
               signal_id, c.id());
  return c.id();
}

grpc::Status AlertsService::Acknowledge(grpc::ServerContext* ctx, const v1::ActRequest* req,
                                        v1::ActResponse* resp) {
  return Act(ctx, v1::COMMAND_KIND_ACKNOWLEDGE, req->signal_id(), req->reason(), 0, resp);
}

grpc::Status AlertsService::Resolve(grpc::ServerContext* ctx, const v1::ActRequest* req,
                                    v1::ActResponse* resp) {
  return Act(ctx, v1::COMMAND_KIND_RESOLVE, req->signal_id(), req->reason(), 0, resp);
}

grpc::Status AlertsService::Silence(grpc::ServerContext* ctx, const v1::SilenceRequest* req,
                                    v1::ActResponse* resp) {
  if (!req->unsilence() && req->duration_ms() <= 0) {
    if (auto op = Caller(ctx); !op.ok()) return ToGrpc(op.status());
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "duration_ms must be positive");
  }
  return Act(ctx, req->unsilence() ? v1::COMMAND_KIND_UNSILENCE : v1::COMMAND_KIND_SILENCE,
             req->signal_id(), req->reason(), req->duration_ms(), resp);
}

absl::StatusOr<std::unique_ptr<grpc::Server>> StartGrpcServer(
    const std::string& address, const std::optional<TlsConfig>& tls,
    const std::vector<grpc::Service*>& services, int* bound_port, const GrpcLimits& limits) {
  GrpcServerOptions o;
  o.tls = tls;
  o.configure = [&limits](grpc::ServerBuilder& b) { ApplyGrpcLimits(limits, &b); };
  ASSIGN_OR_RETURN(GrpcServer served, ServeGrpc(address, services, o));
  if (bound_port != nullptr) *bound_port = served.port;
  return std::move(served.server);
}

}  // namespace cybersyn::alerter
