// TLS for the gRPC servers and clients, from the PEM files named in the config (listen.tls) or on
// the command line (--ca/--cert/--key). The HTTP servers take listen.http_tls (common/http_server).
//   server: cert + key; with client_ca, clients must present a certificate signed by it (mTLS).
//   client: ca (the server's issuer) turns TLS on; cert + key present a client certificate.
// Errors name the file and what it is for; file contents (private keys) are never logged.
#ifndef CYBERSYN_COMMON_TLS_CONFIG_H_
#define CYBERSYN_COMMON_TLS_CONFIG_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace cybersyn {

// Plaintext when `tls` is unset.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const std::optional<TlsConfig>& tls);

struct ClientTls {
  std::string ca;    // PEM; empty = plaintext
  std::string cert;  // PEM client certificate (mTLS); needs key
  std::string key;   // PEM private key of cert
};

// INVALID_ARGUMENT when cert/key are given without ca or one without the other; NOT_FOUND-like
// errors name unreadable files.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcChannelCredentials(
    const ClientTls& tls);

// The whole file, or an error naming `what` ("client CA") and the path.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& what);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_TLS_CONFIG_H_
