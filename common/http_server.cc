#include "common/http_server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/build_info.h"
#include "httplib.h"
#include "prometheus/text_serializer.h"

namespace cybersyn {

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected an address like 127.0.0.1:9464, got \"", address, "\""));
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(host, port);
}

std::string JoinHostPort(const std::string& host, int port) {
  return absl::StrCat(host.find(':') != std::string::npos ? "[" + host + "]" : host, ":", port);
}

absl::Status ListenError(const std::string& address, const std::string& what) {
  const std::string prefix = absl::StrCat(what, ": cannot listen on ", address, ": ");
  auto hp = SplitHostPort(address);
  if (!hp.ok()) return absl::InvalidArgumentError(prefix + std::string(hp.status().message()));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(hp->second);
  if (int rc = getaddrinfo(hp->first.empty() ? nullptr : hp->first.c_str(), port.c_str(), &hints,
                           &found);
      rc != 0) {
    return absl::UnavailableError(prefix + gai_strerror(rc));
  }
  int err = 0;
  for (addrinfo* a = found; a != nullptr && err != EADDRINUSE; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    err = bind(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
    close(fd);
  }
  freeaddrinfo(found);
  if (err == EADDRINUSE) {
    return absl::UnavailableError(prefix + "address in use (another process listens there)");
  }
  return absl::UnavailableError(
      prefix + (err != 0 ? std::string(std::strerror(err)) : "the server library refused it"));
}

namespace {

// cpp-httplib's default_socket_options, minus SO_REUSEPORT.
void ExclusiveSocketOptions(socket_t sock) {
  const int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

std::unique_ptr<httplib::Server> NewServer(const std::optional<TlsConfig>& tls) {
  std::unique_ptr<httplib::Server> server;
  if (!tls) {
    server = std::make_unique<httplib::Server>();
  } else {
    // With a client CA, httplib sets SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT.
    server = std::make_unique<httplib::SSLServer>(
        tls->cert.c_str(), tls->key.c_str(),
        tls->client_ca.empty() ? nullptr : tls->client_ca.c_str());
  }
  server->set_socket_options(ExclusiveSocketOptions);
  return server;
}

}  // namespace

HttpServer::HttpServer(std::shared_ptr<prometheus::Registry> registry, std::optional<TlsConfig> tls,
                       size_t max_body_bytes)
    : registry_(std::move(registry)),
      tls_(std::move(tls)),
      max_body_bytes_(max_body_bytes),
      server_(NewServer(tls_)) {
  RegisterBuildInfo(*registry_);
  server_->set_payload_max_length(max_body_bytes_);
  // cpp-httplib 0.11 (Debian 12) does not bound chunked bodies and drains an oversized declared
  // body before answering: refuse both from the headers, before any body is read.
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    auto refuse = [&](int status, const std::string& why) {
      res.status = status;
      res.set_header("Connection", "close");
      res.set_content(why + "\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    };
    if (req.has_header("Transfer-Encoding")) {
      return refuse(411, "chunked request bodies are not accepted; send Content-Length");
    }
    if (req.has_header("Content-Length")) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(req.get_header_value("Content-Length"), &n)) {
        return refuse(400, "Content-Length is not a number");
      }
      if (n > max_body_bytes_) {
        return refuse(413, absl::StrCat("request body of ", n, " bytes is over the limit of ",
                                        max_body_bytes_, " (listen.limits.max_http_body_bytes)"));
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    prometheus::TextSerializer serializer;
    res.set_content(serializer.Serialize(registry_->Collect()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (ready_.load()) {
      res.set_content("ready\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content("not ready: restoring state\n", "text/plain");
    }
  });
}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::string> HttpServer::Start(const std::string& address) {
  auto hp = SplitHostPort(address);
  if (!hp.ok()) return hp.status();
  auto [host, port] = *hp;
  if (!server_->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTPS on ", address, ": cannot load listen.http_tls (cert \"", tls_ ? tls_->cert : "",
        "\", key \"", tls_ ? tls_->key : "", "\"",
        tls_ && !tls_->client_ca.empty() ? absl::StrCat(", client_ca \"", tls_->client_ca, "\"")
                                         : "",
        "): missing, unreadable, not PEM, or the key does not match the certificate"));
  }
  if (port == 0) {
    port = server_->bind_to_any_port(host);
    if (port <= 0) return ListenError(address, "HTTP");
  } else if (!server_->bind_to_port(host, port)) {
    return ListenError(address, "HTTP");
  }
  port_ = port;
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return JoinHostPort(host, port);
}

void HttpServer::Stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace cybersyn
