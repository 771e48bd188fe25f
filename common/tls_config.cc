#include "common/tls_config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/server_credentials.h"

namespace cybersyn {

absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, " \"", path, "\": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  // A PEM file is text with "-----BEGIN ...": catch a DER file or the wrong file early.
  if (!absl::StrContains(pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", path, "\" is not a PEM file (no -----BEGIN line)"));
  }
  return pem;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const std::optional<TlsConfig>& tls) {
  if (!tls) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert = ReadPemFile(tls->cert, "TLS certificate (listen.tls.cert)");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPemFile(tls->key, "TLS key (listen.tls.key)");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions so;
  so.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls->client_ca.empty()) {
    absl::StatusOr<std::string> ca =
        ReadPemFile(tls->client_ca, "client CA (listen.tls.client_ca)");
    if (!ca.ok()) return ca.status();
    so.pem_root_certs = *ca;
    so.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(so);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcChannelCredentials(
    const ClientTls& tls) {
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs both --cert and --key (env CYBERSYN_CERT, CYBERSYN_KEY)");
  }
  if (tls.ca.empty()) {
    if (!tls.cert.empty()) {
      return absl::InvalidArgumentError(
          "--cert/--key need --ca (the server's CA; env CYBERSYN_CA): client certificates are "
          "only sent over TLS");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions o;
  absl::StatusOr<std::string> ca = ReadPemFile(tls.ca, "CA certificate (--ca)");
  if (!ca.ok()) return ca.status();
  o.pem_root_certs = *ca;
  if (!tls.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPemFile(tls.cert, "client certificate (--cert)");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPemFile(tls.key, "client key (--key)");
    if (!key.ok()) return key.status();
    o.pem_cert_chain = *cert;
    o.pem_private_key = *key;
  }
  return grpc::SslCredentials(o);
}

}  // namespace cybersyn
