#include "server/request_validation.h"

#include "absl/strings/str_cat.h"
#include "store/graph_store.h"

namespace dgsr::server {
namespace {

absl::Status Bad(const std::string& where, const std::string& field, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat(where, field, ": ", problem));
}

absl::Status CheckId(const std::string& where, const std::string& field, const std::string& id,
                     const RequestLimits& limits, bool required) {
  if (id.empty() && required) return Bad(where, field, "must not be empty");
  if (id.size() > limits.max_id_bytes) {
    return Bad(where, field, absl::StrCat("is ", id.size(), " bytes, the limit is ", limits.max_id_bytes));
  }
  return absl::OkStatus();
}

absl::Status CheckItemList(const std::string& where, const std::string& field,
                           const google::protobuf::RepeatedPtrField<std::string>& ids, const RequestLimits& limits) {
  if (ids.size() > limits.max_item_list) {
    return Bad(where, field, absl::StrCat("has ", ids.size(), " items, the limit is ", limits.max_item_list));
  }
  for (int i = 0; i < ids.size(); ++i) {
    absl::Status s = CheckId(where, absl::StrCat(field, "[", i, "]"), ids[i], limits, true);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateMessageSize(const google::protobuf::Message& message, const RequestLimits& limits) {
  const size_t bytes = message.ByteSizeLong();
  if (bytes > limits.max_message_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request is ", bytes, " bytes, the limit is ", limits.max_message_bytes, " (split it)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRecommend(const v1::RecommendRequest& r, const RequestLimits& limits, const std::string& where) {
  if (absl::Status s = CheckId(where, "user_id", r.user_id(), limits, true); !s.ok()) return s;
  if (r.k() < 0 || r.k() > limits.max_k) {
    return Bad(where, "k", absl::StrCat("must be in [0, ", limits.max_k, "] (0 means ", limits.default_k, "), got ", r.k()));
  }
  if (r.has_as_of_unix_s() && (r.as_of_unix_s() < store::kMinEventTime || r.as_of_unix_s() > store::kMaxEventTime)) {
    return Bad(where, "as_of_unix_s",
               absl::StrCat("must be in [", store::kMinEventTime, ", ", store::kMaxEventTime, "], got ", r.as_of_unix_s()));
  }
  if (absl::Status s = CheckItemList(where, "candidate_item_ids", r.candidate_item_ids(), limits); !s.ok()) return s;
  if (absl::Status s = CheckItemList(where, "excluded_item_ids", r.excluded_item_ids(), limits); !s.ok()) return s;
  if (r.has_model_spec()) {
    if (absl::Status s = CheckId(where, "model_spec.name", r.model_spec().name(), limits, false); !s.ok()) return s;
    if (r.model_spec().version() < 0) {
      return Bad(where, "model_spec.version", absl::StrCat("must be >= 0, got ", r.model_spec().version()));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRecommendBatch(const v1::RecommendBatchRequest& request, const RequestLimits& limits) {
  if (request.requests().empty()) return Bad("", "requests", "must not be empty");
  if (request.requests_size() > limits.max_batch_requests) {
    return Bad("", "requests",
               absl::StrCat("has ", request.requests_size(), " entries, the limit is ", limits.max_batch_requests));
  }
  for (int i = 0; i < request.requests_size(); ++i) {
    absl::Status s = ValidateRecommend(request.requests(i), limits, absl::StrCat("requests[", i, "]."));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateEvents(const google::protobuf::RepeatedPtrField<v1::Event>& events, const RequestLimits& limits) {
  if (events.empty()) return Bad("", "events", "must not be empty");
  if (events.size() > limits.max_ingest_events) {
    return Bad("", "events", absl::StrCat("has ", events.size(), " events, the limit is ", limits.max_ingest_events));
  }
  for (int i = 0; i < events.size(); ++i) {
    const v1::Event& e = events[i];
    const std::string where = absl::StrCat("events[", i, "].");
    if (absl::Status s = CheckId(where, "user_id", e.user_id(), limits, true); !s.ok()) return s;
    if (absl::Status s = CheckId(where, "item_id", e.item_id(), limits, true); !s.ok()) return s;
    if (absl::Status s = CheckId(where, "event_id", e.event_id(), limits, false); !s.ok()) return s;
    if (e.time_unix_s() < store::kMinEventTime || e.time_unix_s() > store::kMaxEventTime) {
      return Bad(where, "time_unix_s",
                 absl::StrCat("must be in [", store::kMinEventTime, ", ", store::kMaxEventTime, "], got ", e.time_unix_s()));
    }
  }
  return absl::OkStatus();
}

}  // namespace dgsr::server
