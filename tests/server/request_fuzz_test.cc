// Runs the request-validation fuzz target (request_fuzz.cc) on seeded random bytes and on
// mutations of valid messages, so every CI run fuzzes a little. Deterministic (fixed seed).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "dgsr/v1/recommendation_service.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::string ValidSeed(int which) {
  dgsr::v1::RecommendBatchRequest batch;
  for (int i = 0; i < 3; ++i) {
    auto* r = batch.add_requests();
    r->set_user_id("user-" + std::to_string(i));
    r->set_k(10 * i);
    r->add_candidate_item_ids("item-1");
    r->add_excluded_item_ids("item-2");
    r->set_as_of_unix_s(1700000000);
    r->mutable_model_spec()->set_version(i);
  }
  if (which == 0) return batch.SerializeAsString();
  if (which == 1) return batch.requests(0).SerializeAsString();
  dgsr::v1::IngestRequest ingest;
  for (int i = 0; i < 3; ++i) {
    auto* e = ingest.add_events();
    e->set_user_id("u");
    e->set_item_id("i" + std::to_string(i));
    e->set_time_unix_s(1700000000 + i);
    e->set_event_id("e" + std::to_string(i));
  }
  return ingest.SerializeAsString();
}

TEST(RequestFuzzTest, ValidationNeverCrashesAndAcceptsOnlyWhatIsWithinLimits) {
  std::mt19937_64 rng(20261130);
  for (int n = 0; n < 20000; ++n) {
    std::string input;
    if (n % 2 == 0) {
      input.resize(rng() % 256);
      for (char& c : input) c = static_cast<char>(rng());
    } else {
      input = ValidSeed(n % 3);
      const int edits = 1 + static_cast<int>(rng() % 6);
      for (int e = 0; e < edits && !input.empty(); ++e) {
        const size_t at = rng() % input.size();
        switch (rng() % 3) {
          case 0: input[at] = static_cast<char>(rng()); break;
          case 1: input.erase(at, 1 + rng() % 4); break;
          default: input.insert(at, std::string(1 + rng() % 8, static_cast<char>(rng()))); break;
        }
      }
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
  SUCCEED();
}

}  // namespace
