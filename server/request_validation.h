// Request validation at the gRPC edge: every limit a request can break, checked before any work,
// with a message that names the field ("requests[3].k: must be in [0, 1000], got 5000"). Pure
// functions of the request and the limits, so that the fuzz target (tests/server/request_fuzz.cc)
// drives them directly.
#ifndef DGSR_SERVER_REQUEST_VALIDATION_H_
#define DGSR_SERVER_REQUEST_VALIDATION_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "dgsr/v1/recommendation_service.pb.h"

namespace dgsr::server {

struct RequestLimits {
  int max_k = 1000;                  // RecommendRequest.k
  int max_batch_requests = 1000;     // RecommendBatchRequest.requests
  int max_item_list = 10000;         // candidate_item_ids, excluded_item_ids
  size_t max_id_bytes = 256;         // user, item, event ids; model names
  int max_ingest_events = 100000;    // events per Ingest message
  size_t max_message_bytes = 16 << 20;  // serialized size of one request message
  int default_k = 10;                // used when k is 0
};

// InvalidArgument when a request message is larger than limits.max_message_bytes. (The gRPC
// transport itself refuses messages over 4x that with RESOURCE_EXHAUSTED before any handler runs.)
[[nodiscard]] absl::Status ValidateMessageSize(const google::protobuf::Message& message, const RequestLimits& limits);

// InvalidArgument naming the field; `where` prefixes field names ("requests[3].").
[[nodiscard]] absl::Status ValidateRecommend(const v1::RecommendRequest& request, const RequestLimits& limits,
                                             const std::string& where = "");
[[nodiscard]] absl::Status ValidateRecommendBatch(const v1::RecommendBatchRequest& request,
                                                  const RequestLimits& limits);
// The events of one Ingest / IngestStream message.
[[nodiscard]] absl::Status ValidateEvents(const google::protobuf::RepeatedPtrField<v1::Event>& events,
                                          const RequestLimits& limits);

}  // namespace dgsr::server

#endif  // DGSR_SERVER_REQUEST_VALIDATION_H_
