// HttpServer: the process's small HTTP endpoint (cpp-httplib) serving Prometheus metrics at
// /metrics (prometheus-cpp registry, text format), liveness at /healthz and readiness at
// /readyz (200 only after SetReady(true), e.g. once state restore finished). Other components
// (the Opsroom) may add routes before Start. Requests with bodies over `max_body_bytes`
// (listen.limits.max_http_body_bytes, default 1 MiB) are refused (413) from their headers, chunked
// bodies too (411), a malformed Content-Length is a 400.
// Binds without SO_REUSEPORT (cpp-httplib's default sets it), so a second process on a port in use
// fails with "address in use" instead of silently taking half the connections.
// HTTPS when given a TlsConfig (listen.http_tls): cert + key, and with client_ca, clients must
// present a certificate signed by it.
// Thread-safety: Start/Stop from one thread; SetReady from any; handlers run on server threads.
#ifndef CYBERSYN_COMMON_HTTP_SERVER_H_
#define CYBERSYN_COMMON_HTTP_SERVER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "prometheus/registry.h"

namespace httplib {
class Server;
}

namespace cybersyn {

class HttpServer {
 public:
  // `registry` must outlive the server.
  explicit HttpServer(std::shared_ptr<prometheus::Registry> registry,
                      std::optional<TlsConfig> tls = std::nullopt,
                      size_t max_body_bytes = ClientLimitsConfig{}.max_http_body_bytes);
  ~HttpServer();

  // For adding routes before Start.
  httplib::Server& raw() { return *server_; }

  // Binds `address` ("host:port"; port 0 = any free port) and serves on a background thread.
  // Returns the bound "host:port". With TLS, fails naming the files when they cannot be loaded.
  absl::StatusOr<std::string> Start(const std::string& address);
  void Stop();
  void SetReady(bool ready) { ready_.store(ready); }
  int port() const { return port_; }
  // "https" with TLS, else "http" (for printing URLs).
  const char* scheme() const { return tls_ ? "https" : "http"; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::optional<TlsConfig> tls_;
  size_t max_body_bytes_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> ready_{false};
  int port_ = 0;
};

// Splits "host:port" (IPv6 as "[::1]:port"); INVALID_ARGUMENT names the bad address.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address);
// "host:port", bracketing an IPv6 host.
std::string JoinHostPort(const std::string& host, int port);

// Why `address` cannot be listened on, found by binding it once more the way the servers do
// (SO_REUSEADDR, no SO_REUSEPORT): UNAVAILABLE "<what>: cannot listen on <address>: address in
// use (another process listens there)" or the system's reason. For the servers' bind failures,
// whose libraries do not say why.
absl::Status ListenError(const std::string& address, const std::string& what);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_HTTP_SERVER_H_
