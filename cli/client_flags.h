// Flags and helpers for subcommands that talk to a running server (recommend, ingest): --server,
// TLS (--tls_ca, --tls_client_cert, --tls_client_key) and --timeout_s. List "cli/client_flags.cc"
// in a subcommand's flag_files so that `dgsr <cmd> --help` shows them.
#ifndef DGSR_CLI_CLIENT_FLAGS_H_
#define DGSR_CLI_CLIENT_FLAGS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"

ABSL_DECLARE_FLAG(std::string, server);

namespace dgsr::cli {

// A channel to --server (plaintext, or TLS when --tls_ca is set). InvalidArgument without
// --server; the channel connects lazily.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelFromFlags();

// A client context with the --timeout_s deadline.
std::unique_ptr<grpc::ClientContext> ContextFromFlags();

// A gRPC status as an absl::Status (same code numbers), prefixed with the server address.
absl::Status FromGrpc(const grpc::Status& status);

}  // namespace dgsr::cli

#endif  // DGSR_CLI_CLIENT_FLAGS_H_
