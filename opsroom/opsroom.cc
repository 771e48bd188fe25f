#include "opsroom/opsroom.h"

#include <atomic>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "opsroom/assets.h"

namespace cybersyn::opsroom {
namespace {

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

void SendError(httplib::Response& res, const absl::Status& status) {
  res.status = HttpStatusFor(status.code());
  res.set_content(nlohmann::json{{"error", std::string(status.message())}}.dump(),
                  "application/json");
}

std::string BearerToken(const httplib::Request& req) {
  const std::string h = req.get_header_value("Authorization");
  absl::string_view v(h);
  if (!absl::ConsumePrefix(&v, "Bearer ")) return "";
  return std::string(absl::StripAsciiWhitespace(v));
}

// Every Opsroom response: the page may run only its own script and style (no inline script, no
// other origin, no plugins, not framed), and no response is content-sniffed into something else.
void SetSecurityHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy", std::string(kContentSecurityPolicy));
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
}

// `handler` with the security headers set first.
httplib::Server::Handler Secured(httplib::Server::Handler handler) {
  return [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    SetSecurityHeaders(res);
    handler(req, res);
  };
}

int64_t IntParam(const httplib::Request& req, const char* name, int64_t fallback) {
  int64_t v = fallback;
  if (req.has_param(name) && !absl::SimpleAtoi(req.get_param_value(name), &v)) return fallback;
  return v;
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

void RegisterOpsroom(httplib::Server& server, Backend* backend) {
  auto get = [&server](const std::string& path, httplib::Server::Handler h) {
    server.Get(path, Secured(std::move(h)));
  };
  auto post = [&server](const std::string& path, httplib::Server::Handler h) {
    server.Post(path, Secured(std::move(h)));
  };
  for (const Asset& a : Assets()) {
    auto handler = [a](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(a.body), std::string(a.content_type));
      res.set_header("Cache-Control", "no-cache");
    };
    get(std::string(a.path), handler);
    if (a.path == "/index.html") get("/", handler);
  }

  get("/api/status", [backend](const httplib::Request& req, httplib::Response& res) {
    auto st =
        backend->Status(req.get_param_value("node"), static_cast<int>(IntParam(req, "depth", 16)));
    if (!st.ok()) return SendError(res, st.status());
    res.set_content(ToJson(*st), "application/json");
  });

  get("/api/signals", [backend](const httplib::Request& req, httplib::Response& res) {
    auto sigs = backend->OpenSignals(req.get_param_value("subtree"));
    if (!sigs.ok()) return SendError(res, sigs.status());
    v1::ListResponse list;
    for (auto& s : *sigs) *list.add_signals() = std::move(s);
    res.set_content(ToJson(list), "application/json");
  });

  get("/api/series", [backend](const httplib::Request& req, httplib::Response& res) {
    v1::SeriesHistoryRequest q;
    q.set_node(req.get_param_value("node"));
    q.set_indicator(req.get_param_value("indicator"));
    q.set_window_ms(IntParam(req, "window_ms", 0));
    q.set_from_ms(IntParam(req, "from_ms", 0));
    q.set_to_ms(IntParam(req, "to_ms", 0));
    q.set_limit(static_cast<uint32_t>(IntParam(req, "limit", 500)));
    if (q.node().empty() || q.indicator().empty()) {
      return SendError(res, absl::InvalidArgumentError("node and indicator are required"));
    }
    auto hist = backend->Series(q);
    if (!hist.ok()) return SendError(res, hist.status());
    res.set_content(ToJson(*hist), "application/json");
  });

  get("/api/whoami", [backend](const httplib::Request& req, httplib::Response& res) {
    auto who = backend->Authenticate(BearerToken(req));
    if (!who.ok()) return SendError(res, who.status());
    res.set_content(nlohmann::json{{"name", who->name}, {"subtree", who->subtree}}.dump(),
                    "application/json");
  });

  post(R"(/api/signals/([^/]+)/(ack|resolve|silence|unsilence))",
       [backend](const httplib::Request& req, httplib::Response& res) {
         const std::string id = req.matches[1];
         const std::string act = req.matches[2];
         std::string reason;
         int64_t duration_ms = 0;
         if (!req.body.empty()) {
           nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
           if (body.is_discarded() || !body.is_object()) {
             return SendError(res, absl::InvalidArgumentError("body is not a JSON object"));
           }
           reason = body.value("reason", "");
           duration_ms = body.value("duration_ms", int64_t{0});
         }
         v1::CommandKind kind = v1::COMMAND_KIND_ACKNOWLEDGE;
         if (act == "resolve") kind = v1::COMMAND_KIND_RESOLVE;
         if (act == "silence") kind = v1::COMMAND_KIND_SILENCE;
         if (act == "unsilence") kind = v1::COMMAND_KIND_UNSILENCE;
         if (kind == v1::COMMAND_KIND_SILENCE && duration_ms <= 0) {
           return SendError(res,
                            absl::InvalidArgumentError("silence needs a positive duration_ms"));
         }
         auto cmd =
             backend->Act(BearerToken(req), kind, id, reason, absl::Milliseconds(duration_ms));
         if (!cmd.ok()) return SendError(res, cmd.status());
         res.set_content(nlohmann::json{{"command_id", *cmd}}.dump(), "application/json");
       });

  // Server-sent events: one "signal" event per transition; the id is the resume cursor.
  get("/api/events", [backend](const httplib::Request& req, httplib::Response& res) {
    auto cursor = std::make_shared<std::string>(req.get_header_value("Last-Event-ID"));
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [backend, cursor](size_t, httplib::DataSink& sink) {
          auto events = backend->EventsAfter(*cursor, absl::Seconds(2));
          if (!events.ok()) {
            sink.done();
            return false;
          }
          std::string chunk;
          for (const auto& [c, e] : *events) {
            absl::StrAppend(&chunk, "event: signal\nid: ", c, "\ndata: ", ToJson(e), "\n\n");
            *cursor = c;
          }
          if (chunk.empty()) chunk = ": keep-alive\n\n";
          return sink.write(chunk.data(), chunk.size());
        });
  });
}

}  // namespace cybersyn::opsroom
