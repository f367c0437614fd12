// dgsr recommend: top-K recommendations for users. Until the gRPC server exists this runs the
// model in-process on a store that no server holds open (the same Recommender the server will run).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "cli/store_flags.h"
#include "common/status_macros.h"
#include "model/recommender.h"
#include "trainer/export.h"

ABSL_FLAG(std::string, user_ids, "", "comma-separated external user ids");
ABSL_FLAG(int, k, 10, "recommendations per user");
ABSL_FLAG(bool, exclude_seen, true, "never recommend an item the user already interacted with");
ABSL_FLAG(std::string, candidates, "", "optional comma-separated external item ids to rank instead of the catalogue");
ABSL_DECLARE_FLAG(std::string, artifact);
ABSL_DECLARE_FLAG(std::string, device);

namespace dgsr::cli {
namespace {

absl::Status Recommend() {
  ASSIGN_OR_RETURN(store::GraphStoreOptions options, StoreOptionsFromFlags());
  options.create_if_missing = false;
  ASSIGN_OR_RETURN(auto graph_store, store::GraphStore::Open(options));
  std::string path = absl::GetFlag(FLAGS_artifact);
  if (path.empty()) return absl::InvalidArgumentError("--artifact (a model.pt or a versioned model directory) is required");
  if (path.size() < 3 || path.substr(path.size() - 3) != ".pt") {
    ASSIGN_OR_RETURN(std::string dir, trainer::LatestVersionDir(path));
    path = dir + "/model.pt";
  }
  model::ConfigureTorchRuntime(0);
  ASSIGN_OR_RETURN(torch::Device device, model::ParseDevice(absl::GetFlag(FLAGS_device)));
  ASSIGN_OR_RETURN(auto net, model::DgsrNetwork::Load(path, device));
  std::vector<std::string> users = absl::StrSplit(absl::GetFlag(FLAGS_user_ids), ',', absl::SkipEmpty());
  if (users.empty()) return absl::InvalidArgumentError("--user_ids is required");
  std::vector<store::NodeId> candidates;
  std::vector<std::string> candidate_ids = absl::StrSplit(absl::GetFlag(FLAGS_candidates), ',', absl::SkipEmpty());
  for (const std::string& c : candidate_ids) {
    auto id = graph_store->ItemId(c);
    if (!id) return absl::NotFoundError("unknown candidate item '" + c + "'");
    candidates.push_back(*id);
  }
  std::vector<model::RecommendRequest> requests;
  for (const std::string& u : users) {
    auto id = graph_store->UserId(u);
    if (!id) return absl::NotFoundError("unknown user '" + u + "'");
    model::RecommendRequest r;
    r.user = *id;
    r.k = absl::GetFlag(FLAGS_k);
    r.exclude_seen = absl::GetFlag(FLAGS_exclude_seen);
    r.candidates = candidates;
    requests.push_back(std::move(r));
  }
  model::Recommender recommender(net.get());
  auto view = graph_store->graph().Read();
  ASSIGN_OR_RETURN(auto lists, recommender.Recommend(view, requests));
  std::printf("model %s (version %s)\n", path.c_str(),
              net->metadata().GetNumber("version") ? std::to_string(static_cast<int64_t>(*net->metadata().GetNumber("version"))).c_str() : "?");
  for (size_t s = 0; s < users.size(); ++s) {
    std::vector<store::NodeId> history(8);
    history.resize(view.RecentItems(requests[s].user, {store::kMinTime, store::kMaxTime}, 8, history.data(), nullptr));
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
  absl::Status s = Recommend();
  if (!s.ok()) {
    std::fprintf(stderr, "dgsr recommend: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace dgsr::cli
