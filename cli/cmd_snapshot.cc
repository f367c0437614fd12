// dgsr snapshot: asks a running server for a consistent snapshot of its store (AdminService.
// CreateSnapshot) and prints where it is, for `dgsr train --snapshot=<path>`.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "cli/client_flags.h"
#include "common/status_macros.h"
#include "dgsr/v1/admin_service.grpc.pb.h"

ABSL_FLAG(bool, path_only, false, "print only the snapshot's path (for scripts)");

namespace dgsr::cli {
namespace {

absl::Status Snapshot() {
  ASSIGN_OR_RETURN(auto channel, ChannelFromFlags());
  auto stub = v1::AdminService::NewStub(channel);
  v1::CreateSnapshotResponse response;
  auto ctx = ContextFromFlags();
  RETURN_IF_ERROR(FromGrpc(stub->CreateSnapshot(ctx.get(), v1::CreateSnapshotRequest(), &response)));
  if (absl::GetFlag(FLAGS_path_only)) {
    std::printf("%s\n", response.path().c_str());
    return absl::OkStatus();
  }
  std::printf("snapshot %s: %lld events, %lld users, %lld items, newest event at %lld (snapshot id %s)\n",
              response.path().c_str(), static_cast<long long>(response.events()),
              static_cast<long long>(response.users()), static_cast<long long>(response.items()),
              static_cast<long long>(response.max_time_unix_s()), response.snapshot_id().c_str());
  for (const std::string& removed : response.removed_paths()) std::printf("removed old snapshot %s\n", removed.c_str());
  return absl::OkStatus();
}

}  // namespace

int RunSnapshot(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr snapshot: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  absl::Status s = Snapshot();
  if (!s.ok()) {
    std::fprintf(stderr, "dgsr snapshot: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace dgsr::cli
