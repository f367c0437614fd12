#include "cli/client_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/status_macros.h"

ABSL_FLAG(std::string, server, "", "a running dgsr server, host:port");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA bundle that signed the server's certificate (enables TLS)");
ABSL_FLAG(std::string, tls_client_cert, "", "PEM client certificate, for servers that verify clients");
ABSL_FLAG(std::string, tls_client_key, "", "PEM client private key");
ABSL_FLAG(double, timeout_s, 30, "deadline of each call, seconds");

namespace dgsr::cli {

absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelFromFlags() {
  const std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) return absl::InvalidArgumentError("--server (host:port of a running dgsr serve) is required");
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!absl::GetFlag(FLAGS_tls_ca).empty()) {
    grpc::SslCredentialsOptions ssl;
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(absl::GetFlag(FLAGS_tls_ca)));
    if (!absl::GetFlag(FLAGS_tls_client_cert).empty()) {
      ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadFile(absl::GetFlag(FLAGS_tls_client_cert)));
      ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFile(absl::GetFlag(FLAGS_tls_client_key)));
    }
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(server, credentials, args);
}

std::unique_ptr<grpc::ClientContext> ContextFromFlags() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_timeout_s))));
  return ctx;
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(absl::GetFlag(FLAGS_server), ": ", status.error_message()));
}

}  // namespace dgsr::cli
