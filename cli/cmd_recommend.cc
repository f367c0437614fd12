// dgsr recommend: top-K recommendations for users, from a running server (--server) or in-process
// on a store that no server holds open (--store with --artifact or --model_dir).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "cli/client_flags.h"
#include "cli/common_flags.h"
#include "cli/store_flags.h"
#include "common/status_macros.h"
#include "dgsr/v1/recommendation_service.grpc.pb.h"
#include "model/dgsr_network.h"
#include "model/model_dir.h"
#include "model/recommender.h"
#include "model/torch_runtime.h"

ABSL_FLAG(std::string, user_ids, "", "comma-separated external user ids");
ABSL_FLAG(int, k, 10, "recommendations per user");
ABSL_FLAG(bool, exclude_seen, true, "never recommend an item the user already interacted with");
ABSL_FLAG(std::string, candidates, "", "optional comma-separated external item ids to rank instead of the catalogue");
ABSL_FLAG(std::string, exclude, "", "optional comma-separated external item ids never to recommend");
ABSL_FLAG(int64_t, as_of, -1, "recommend as of this Unix time (only earlier interactions count); -1: now");
ABSL_FLAG(std::string, model_name, "", "with --server: the model name (empty: the server's default)");
ABSL_FLAG(int64_t, model_version, 0, "with --server: a loaded version (0: the serving one)");
ABSL_DECLARE_FLAG(std::string, artifact);

namespace dgsr::cli {
namespace {

std::vector<std::string> List(const std::string& flag) { return absl::StrSplit(flag, ',', absl::SkipEmpty()); }

absl::Status RecommendRemote(const std::vector<std::string>& users) {
  ASSIGN_OR_RETURN(auto channel, ChannelFromFlags());
  auto stub = v1::RecommendationService::NewStub(channel);
  v1::RecommendBatchRequest request;
  for (const std::string& u : users) {
    v1::RecommendRequest* r = request.add_requests();
    r->set_user_id(u);
    r->set_k(absl::GetFlag(FLAGS_k));
    r->set_exclude_seen(absl::GetFlag(FLAGS_exclude_seen));
    if (absl::GetFlag(FLAGS_as_of) >= 0) r->set_as_of_unix_s(absl::GetFlag(FLAGS_as_of));
    for (const std::string& c : List(absl::GetFlag(FLAGS_candidates))) r->add_candidate_item_ids(c);
    for (const std::string& c : List(absl::GetFlag(FLAGS_exclude))) r->add_excluded_item_ids(c);
    r->mutable_model_spec()->set_name(absl::GetFlag(FLAGS_model_name));
    r->mutable_model_spec()->set_version(absl::GetFlag(FLAGS_model_version));
  }
  v1::RecommendBatchResponse response;
  auto ctx = ContextFromFlags();
  RETURN_IF_ERROR(FromGrpc(stub->RecommendBatch(ctx.get(), request, &response)));
  for (int i = 0; i < response.responses_size(); ++i) {
    const v1::RecommendResponse& r = response.responses(i);
    std::printf("user %s  model %s v%lld%s\n  recommended:", users[i].c_str(), r.model_spec().name().c_str(),
                static_cast<long long>(r.model_spec().version()),
                r.fallback() ? (" (fallback: " + v1::FallbackReason_Name(r.fallback_reason()) + ")").c_str() : "");
    for (const auto& item : r.items()) std::printf(" %s(%.2f)", item.item_id().c_str(), item.score());
    std::printf("\n");
  }
  return absl::OkStatus();
}

absl::Status RecommendInProcess(const std::vector<std::string>& users) {
  ASSIGN_OR_RETURN(store::GraphStoreOptions options, StoreOptionsFromFlags());
  options.create_if_missing = false;
  ASSIGN_OR_RETURN(auto graph_store, store::GraphStore::Open(options));
  std::string path = absl::GetFlag(FLAGS_artifact);
  if (path.empty()) path = absl::GetFlag(FLAGS_model_dir);
  if (path.empty()) return absl::InvalidArgumentError("--artifact or --model_dir is required (or --server)");
  ASSIGN_OR_RETURN(path, model::ResolveModelPath(path));
  model::ConfigureTorchRuntime(absl::GetFlag(FLAGS_torch_threads));
  ASSIGN_OR_RETURN(torch::Device device, model::ParseDevice(absl::GetFlag(FLAGS_device)));
  ASSIGN_OR_RETURN(auto scoring, model::LoadScoringModel(path, device));
  std::vector<store::NodeId> candidates, excluded;
  for (const std::string& c : List(absl::GetFlag(FLAGS_candidates))) {
    auto id = graph_store->ItemId(c);
    if (!id) return absl::NotFoundError("unknown candidate item '" + c + "'");
    candidates.push_back(*id);
  }
  for (const std::string& c : List(absl::GetFlag(FLAGS_exclude))) {
    if (auto id = graph_store->ItemId(c)) excluded.push_back(*id);
  }
  std::vector<model::RecommendRequest> requests;
  for (const std::string& u : users) {
    auto id = graph_store->UserId(u);
    if (!id) return absl::NotFoundError("unknown user '" + u + "' (the server answers such users with its fallback)");
    model::RecommendRequest r;
    r.user = *id;
    r.k = absl::GetFlag(FLAGS_k);
    r.exclude_seen = absl::GetFlag(FLAGS_exclude_seen);
    if (absl::GetFlag(FLAGS_as_of) >= 0) r.as_of = absl::GetFlag(FLAGS_as_of);
    r.candidates = candidates;
    r.excluded = excluded;
    requests.push_back(std::move(r));
  }
  model::Recommender recommender(scoring.get());
  ASSIGN_OR_RETURN(auto lists, recommender.Recommend(graph_store->graph(), requests));
  const auto version = scoring->metadata().GetNumber("version");
  std::printf("model %s (%s, version %s)\n", path.c_str(), std::string(model::NetworkName(scoring->network())).c_str(),
              version ? std::to_string(static_cast<int64_t>(*version)).c_str() : "?");
  auto view = graph_store->graph().Read();
  for (size_t s = 0; s < users.size(); ++s) {
    std::vector<store::NodeId> history(8);
    history.resize(view.RecentItems(requests[s].user, {store::kMinTime, requests[s].as_of}, 8, history.data(), nullptr));
    std::printf("user %s  recent:", users[s].c_str());
    for (store::NodeId i : history) std::printf(" %s", graph_store->ExternalItemId(i).value_or("?").c_str());
    std::printf("\n  recommended:");
    for (const auto& item : lists[s]) {
      std::printf(" %s(%.2f)", graph_store->ExternalItemId(item.item).value_or("?").c_str(), item.score);
    }
    std::printf("\n");
  }
  return absl::OkStatus();
}

}  // namespace

int RunRecommend(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr recommend: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  const std::vector<std::string> users = List(absl::GetFlag(FLAGS_user_ids));
  absl::Status s = users.empty() ? absl::InvalidArgumentError("--user_ids is required")
                   : absl::GetFlag(FLAGS_server).empty() ? RecommendInProcess(users)
                                                         : RecommendRemote(users);
  if (!s.ok()) {
    std::fprintf(stderr, "dgsr recommend: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace dgsr::cli
