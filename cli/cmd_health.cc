// dgsr health: asks a running server's grpc.health.v1.Health whether it serves; exit 0 when it
// does, 1 otherwise (for container HEALTHCHECKs and scripts that wait for a server).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/clock.h"
#include "cli/client_flags.h"
#include "common/status_macros.h"
#include "grpc/health/v1/health.grpc.pb.h"

ABSL_FLAG(std::string, service, "", "the service to ask about (empty: the whole server)");
ABSL_FLAG(double, wait_s, 0, "keep asking for up to this long until the server is SERVING");

namespace dgsr::cli {
namespace {

absl::Status Check() {
  ASSIGN_OR_RETURN(auto channel, ChannelFromFlags());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  const absl::Time give_up = absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_wait_s));
  while (true) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(absl::GetFlag(FLAGS_service));
    grpc::health::v1::HealthCheckResponse response;
    auto ctx = ContextFromFlags();
    absl::Status status = FromGrpc(stub->Check(ctx.get(), request, &response));
    if (status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      std::printf("SERVING\n");
      return absl::OkStatus();
    }
    if (absl::Now() >= give_up) {
      if (!status.ok()) return status;
      return absl::UnavailableError(
          grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

}  // namespace

int RunHealth(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr health: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  absl::Status s = Check();
  if (!s.ok()) {
    std::fprintf(stderr, "dgsr health: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace dgsr::cli
