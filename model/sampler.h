// SubgraphSampler: the m-order sub-graph G^m_u(t) of paper §4.2 (Algorithm 1), emitted directly
// as the per-layer blocks that the network (model/dgsr_network.h) consumes.
//
// The sub-graph. From anchor user u at time t (strictly exclusive): u takes its n most recent
// items; then, for m rounds, every frontier item takes its n most recent users and every new
// user its n most recent items, excluding nodes already taken. m = 1 is u and its items (hop 1);
// each further order adds two hops, so nodes reach hop 2m-1. A node's in-neighbours are the n
// most recent neighbours it took (its "neighbour list", in time order); nodes on the last hop take
// none. Variants (DgsrConfig::sampler_variant):
//   kPaper   every edge with time < t is visible.
//   kAuthors only edges with time in [start, t) are visible, where start is the time of u's
//            (n+1)-th most recent item (u's first item if it has at most n; with others_before
//            set, start is a position of u's and bounds only u's own list); and each round keeps
//            at most n new users: the n most recent by their latest edge to the frontier (ties:
//            smaller id). Users not kept stay in the sub-graph as leaves (no neighbour list).
//            The authors' code keeps the n largest ids instead; we do not copy that quirk.
// Without others_before no edge after t is visible, and of the edges at t only the anchor's own earlier ones:
// events tied with the predicted one (same second, or same day in day-resolution data) keep the
// anchor's own order (SampleRequest::ties: its first `ties` edges at t are its history, in its
// item list and in those items' user lists), while other users' edges at t stay hidden: their
// order relative to the predicted event is unknown, and one of them may be the very target.
// In general the sub-graph is Algorithm 1 on the graph of the anchor's own edges before t (and
// its ties) and every other user's edges before SampleRequest::others_before (t unless set;
// order-only data sets it, trainer/split.h).
//
// Blocks. Only nodes within D = config.BlockDepth() hops of u can affect u's final vector
// (L layers; L+1 with the last-item option). Mode::kPruned samples just those, and layer l
// updates only nodes within D-l hops: exactly what layer l+1 reads. Mode::kFull samples the whole
// sub-graph and updates every node at every layer; it exists to prove the pruning exact (tests)
// and to measure the speed-up (bench). Rows are ordered by hop across the batch, so each layer's
// destinations are a prefix of the rows.
//
// Thread-compatibility: a sampler holds scratch memory; use one per thread. The graph view must
// outlive the call.
#ifndef DGSR_MODEL_SAMPLER_H_
#define DGSR_MODEL_SAMPLER_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "model/config.h"
#include "store/temporal_graph.h"

namespace dgsr::model {

struct SampleRequest {
  store::NodeId user;
  store::Timestamp before;  // Predict the interaction at this time: edges at or after it are hidden,
  int32_t ties = 0;         // except the user's own first `ties` edges at `before` (earlier events
                            // of the same time in its sequence; trainer::Sample::ties).
  // Other users' edges are visible strictly before this time instead (unset: `before`). For
  // order-only data (trainer/split.h), where times are positions that mean nothing across users:
  // there every other user's training edges are visible, whatever the anchor's position, and the
  // anchor's own later edges stay hidden (its `ties` edges at `before` stay its history).
  std::optional<store::Timestamp> others_before = std::nullopt;
};

// A batch of sampled sub-graphs as flat arrays (row-major), ready to become tensors.
struct Blocks {
  int64_t num_anchors = 0;          // B: user rows 0..B-1 are the requests, in order.
  std::vector<int64_t> user_ids;    // [NU] dense user id of each user row
  std::vector<int64_t> item_ids;    // [NI]
  int64_t user_width = 1;           // W: padded neighbour-list width of user rows
  std::vector<int64_t> user_nbr;    // [EU * W] item rows, oldest first, right-padded with 0
  std::vector<int64_t> user_len;    // [EU] valid entries per row
  int64_t item_width = 1;
  std::vector<int64_t> item_nbr;    // [EI * W'] user rows
  std::vector<int64_t> item_len;    // [EI]
  std::vector<int64_t> layer_users; // [L] rows updated by layer l+1 (nested prefixes)
  std::vector<int64_t> layer_items; // [L]
  std::vector<int64_t> last_item;   // [B] item row of each anchor's most recent item, or -1

  int64_t num_edges() const;        // Valid neighbour entries in all rows.
  void Clear();
};

class SubgraphSampler {
 public:
  enum class Mode { kPruned, kFull };

  SubgraphSampler(const DgsrConfig& config, Mode mode);
  ~SubgraphSampler();
  SubgraphSampler(const SubgraphSampler&) = delete;
  SubgraphSampler& operator=(const SubgraphSampler&) = delete;

  // Samples every request and writes their blocks into `out` (cleared first).
  void SampleBatch(const store::TemporalGraph::ReadView& graph,
                   std::span<const SampleRequest> requests, Blocks* out);

  // The time window the variant uses for the request's user (exposed for tests). Other users'
  // and every item's edges are read in the same window without its ties, ending at
  // others_before instead when that is set (and then from the beginning of time).
  store::TimeWindow WindowFor(const store::TemporalGraph::ReadView& graph,
                              const SampleRequest& request) const;

 private:
  struct Local;  // Per-sample scratch (sampler.cc).
  void SampleOne(const store::TemporalGraph::ReadView& graph, const SampleRequest& request,
                 Local* local);
  // Makes the `count` users of `item` in local's buffers (its most recent before the others'
  // time, fetched with room for the removals) what the anchor's graph holds: removes the
  // anchor's edges it must not see, appends its own edges the others' window left out as the
  // newest, and keeps the last n. Returns the new count.
  int FixAnchorEdges(store::NodeId item, const SampleRequest& request, int count, Local* local) const;

  DgsrConfig config_;
  Mode mode_;
  std::vector<Local> locals_;
};

}  // namespace dgsr::model

#endif  // DGSR_MODEL_SAMPLER_H_
