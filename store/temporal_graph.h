// TemporalGraph: the in-memory, time-ordered adjacency of the user-item interaction graph
// (paper §4.1: every interaction (u, i, t) is an edge of a continuous-time dynamic graph).
// It is what the sub-graph sampler (model/sampler.h) reads, in the server and in the trainer.
//
// Dense ids: users and items each have their own dense 32-bit id space [0, num_users) and
// [0, num_items); the GraphStore assigns them (store/graph_store.h).
// Time: int64 seconds since the Unix epoch for real-time data; for order-only datasets the
// time is the position in the user's sequence (see store/import.h).
//
// Layout: per direction, a compact CSR (ids: 4 bytes, times: 8 bytes per edge) built in bulk, plus
// small per-node tails for edges added later. Each node's neighbours are kept sorted by time;
// equal times keep insertion order. A late edge (older than the node's newest) is inserted in
// order. Tails are merged into the CSR when they grow past a fraction of it.
//
// Ties. Events of the same time keep the order they were added in (for a user: its sequence
// order, e.g. a dataset's file order). "Before t" means strictly earlier, so a query at t sees
// none of the edges at t, of any user, unless its window asks for the first `ties` of them
// (TimeWindow::ties): that is how a user's own earlier events of the same second or day stay
// in its history while other users' events of that time stay hidden (model/sampler.h).
//
// Usage:
//   TemporalGraph graph;
//   graph.Add(interactions);                          // one writer
//   TemporalGraph::ReadView view = graph.Read();      // many readers, each with a view
//   NodeId items[50]; Timestamp times[50];
//   int n = view.RecentItems(user, /*before=*/t, 50, items, times);   // oldest first
//
// Thread-safety: Add() may run concurrently with any number of ReadViews. A ReadView holds a
// shared lock for its lifetime; Add() takes the exclusive lock only while it applies one batch
// (and, occasionally, while it merges tails), so keep views short-lived (one request or one
// sample). Do not call Add() from a thread that holds a ReadView (it would deadlock), and do not
// open a second view on a thread that already holds one (absl::Mutex gives waiting writers
// priority, so a nested ReaderLock can deadlock behind a waiting Add()).
// Queries on a view take no lock and allocate nothing (UserSequence aside: it fills vectors).
// Concurrent Add() calls are serialized internally. A tail merge is built while readers keep
// reading; only the final pointer swap takes the exclusive lock.
#ifndef DGSR_STORE_TEMPORAL_GRAPH_H_
#define DGSR_STORE_TEMPORAL_GRAPH_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace dgsr::store {

using NodeId = uint32_t;
using Timestamp = int64_t;

inline constexpr Timestamp kMinTime = std::numeric_limits<Timestamp>::min();
inline constexpr Timestamp kMaxTime = std::numeric_limits<Timestamp>::max();

struct Interaction {
  NodeId user;
  NodeId item;
  Timestamp time;
};

// A half-open time window [begin, end). Queries see the edges with begin <= time < end and, of
// a node's edges with time == end, the first `ties` (in the order they were added).
struct TimeWindow {
  Timestamp begin = kMinTime;
  Timestamp end = kMaxTime;
  int32_t ties = 0;
};

namespace internal {
class Adjacency;  // One direction (user->items or item->users). See temporal_graph.cc.
}

class TemporalGraph {
 public:
  TemporalGraph();
  ~TemporalGraph();
  TemporalGraph(const TemporalGraph&) = delete;
  TemporalGraph& operator=(const TemporalGraph&) = delete;

  // Builds a graph from interactions in any order (the fast path used when a store opens).
  // Ties in time keep the order of `interactions`.
  static std::unique_ptr<TemporalGraph> Build(std::span<const Interaction> interactions,
                                              NodeId num_users, NodeId num_items);

  // Adds edges. Ids may exceed the current node counts (the graph grows). Late edges are
  // inserted in time order. The caller (GraphStore) has already validated and persisted them.
  void Add(std::span<const Interaction> interactions);

  // A consistent read-only view. Holds a shared lock until destroyed.
  class ReadView {
   public:
    ReadView(ReadView&& other) noexcept;  // The moved-from view no longer holds the lock.
    ~ReadView();

    NodeId num_users() const;
    NodeId num_items() const;
    int64_t num_interactions() const;

    // The at most `n` most recent items of `user` in `window` (strictly before window.end,
    // plus window.ties tied edges at window.end), written oldest first to `items`/`times` (either may be null). Returns the count.
    // Unknown ids have no neighbours.
    int RecentItems(NodeId user, TimeWindow window, int n, NodeId* items, Timestamp* times) const;
    // The same for the users of `item`.
    int RecentUsers(NodeId item, TimeWindow window, int n, NodeId* users, Timestamp* times) const;

    // Number of edges of the node with time < before.
    int64_t UserDegree(NodeId user, Timestamp before) const;
    int64_t ItemDegree(NodeId item, Timestamp before) const;

    // The user's whole sequence in time order (appended to the outputs after clearing them).
    void UserSequence(NodeId user, std::vector<NodeId>* items, std::vector<Timestamp>* times) const;

   private:
    friend class TemporalGraph;
    explicit ReadView(const TemporalGraph* graph);
    const TemporalGraph* graph_;
  };

  ReadView Read() const;

  // Bytes of heap memory held by the adjacency (both directions, times included).
  int64_t MemoryBytes() const;

 private:
  absl::Mutex write_mu_;  // Serializes Add(); held before mu_.
  mutable absl::Mutex mu_;
  std::unique_ptr<internal::Adjacency> user_items_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<internal::Adjacency> item_users_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dgsr::store

#endif  // DGSR_STORE_TEMPORAL_GRAPH_H_
