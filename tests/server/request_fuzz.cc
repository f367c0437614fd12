// Fuzz target for request validation (server/request_validation.h): arbitrary bytes are parsed as
// each request message and validated; validation must never crash, and whatever it accepts must
// really be within the limits. Built two ways:
//   - with clang and -DDGSR_LIBFUZZER=ON: a libFuzzer binary (request_fuzzer) for long runs;
//   - always: request_fuzz_test, a GoogleTest that drives the same entry point with 20,000
//     seeded random and mutated inputs on every CI run.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dgsr/v1/recommendation_service.pb.h"
#include "server/request_validation.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

void CheckAcceptedRecommend(const dgsr::v1::RecommendRequest& r, const dgsr::server::RequestLimits& limits) {
  Check(!r.user_id().empty() && r.user_id().size() <= limits.max_id_bytes);
  Check(r.k() >= 0 && r.k() <= limits.max_k);
  Check(r.candidate_item_ids_size() <= limits.max_item_list && r.excluded_item_ids_size() <= limits.max_item_list);
  for (const auto& id : r.candidate_item_ids()) Check(!id.empty() && id.size() <= limits.max_id_bytes);
  for (const auto& id : r.excluded_item_ids()) Check(!id.empty() && id.size() <= limits.max_id_bytes);
  Check(r.model_spec().version() >= 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dgsr::server::RequestLimits limits;
  limits.max_item_list = 64;  // small limits, so that random inputs reach both sides of them
  limits.max_id_bytes = 16;
  limits.max_batch_requests = 8;
  limits.max_ingest_events = 8;
  limits.max_k = 50;
  dgsr::v1::RecommendRequest recommend;
  if (recommend.ParseFromArray(data, static_cast<int>(size)) && dgsr::server::ValidateRecommend(recommend, limits).ok()) {
    CheckAcceptedRecommend(recommend, limits);
  }
  dgsr::v1::RecommendBatchRequest batch;
  if (batch.ParseFromArray(data, static_cast<int>(size)) && dgsr::server::ValidateRecommendBatch(batch, limits).ok()) {
    Check(batch.requests_size() >= 1 && batch.requests_size() <= limits.max_batch_requests);
    for (const auto& r : batch.requests()) CheckAcceptedRecommend(r, limits);
  }
  dgsr::v1::IngestRequest ingest;
  if (ingest.ParseFromArray(data, static_cast<int>(size)) && dgsr::server::ValidateEvents(ingest.events(), limits).ok()) {
    Check(ingest.events_size() >= 1 && ingest.events_size() <= limits.max_ingest_events);
    for (const auto& e : ingest.events()) {
      Check(!e.user_id().empty() && !e.item_id().empty() && e.user_id().size() <= limits.max_id_bytes);
      Check(e.time_unix_s() >= 0);
    }
  }
  return 0;
}
