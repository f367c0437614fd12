#include "store/temporal_graph.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>

namespace dgsr::store {
namespace internal {

// One direction of the graph. Node `v` has a CSR slice [offsets_[v], offsets_[v+1]) (only for
// v < csr_nodes_) and optionally a tail (edges added after the last build/merge). Both parts are
// sorted by time; on equal times every CSR edge precedes every tail edge because it was added
// earlier, so a query merges the two from the newest end.
class Adjacency {
 public:
  Adjacency() : offsets_(1, 0) {}

  // `src(k)`, `dst(k)`, `time(k)` describe edge k of `count` (input order breaks time ties).
  template <typename Src, typename Dst, typename Time>
  static std::unique_ptr<Adjacency> Build(NodeId num_nodes, size_t count, Src src, Dst dst,
                                          Time time) {
    auto adj = std::make_unique<Adjacency>();
    adj->num_nodes_ = num_nodes;
    adj->csr_nodes_ = num_nodes;
    adj->offsets_.assign(static_cast<size_t>(num_nodes) + 1, 0);
    for (size_t k = 0; k < count; ++k) ++adj->offsets_[src(k) + 1];
    std::partial_sum(adj->offsets_.begin(), adj->offsets_.end(), adj->offsets_.begin());
    adj->ids_.resize(count);
    adj->times_.resize(count);
    std::vector<uint64_t> cursor(adj->offsets_.begin(), adj->offsets_.end() - 1);
    for (size_t k = 0; k < count; ++k) {
      uint64_t pos = cursor[src(k)]++;
      adj->ids_[pos] = dst(k);
      adj->times_[pos] = time(k);
    }
    adj->tail_of_.assign(num_nodes, kNoTail);
    adj->SortSlices();
    return adj;
  }

  NodeId num_nodes() const { return num_nodes_; }
  int64_t num_edges() const { return static_cast<int64_t>(ids_.size()) + tail_edges_; }

  void EnsureNodes(NodeId n) {
    if (n <= num_nodes_) return;
    num_nodes_ = n;
    tail_of_.resize(n, kNoTail);
  }

  // Inserts after every edge with time <= `time` (keeps insertion order among ties).
  void Insert(NodeId src, NodeId dst, Timestamp time) {
    EnsureNodes(src + 1);
    uint32_t& t = tail_of_[src];
    if (t == kNoTail) {
      t = static_cast<uint32_t>(tails_.size());
      tails_.emplace_back();
    }
    Tail& tail = tails_[t];
    size_t pos = tail.times.empty() || tail.times.back() <= time
                     ? tail.times.size()
                     : std::upper_bound(tail.times.begin(), tail.times.end(), time) -
                           tail.times.begin();
    tail.ids.insert(tail.ids.begin() + pos, dst);
    tail.times.insert(tail.times.begin() + pos, time);
    ++tail_edges_;
  }

  bool NeedsMerge() const {
    return tail_edges_ > std::max<int64_t>(4096, static_cast<int64_t>(ids_.size()) / 8);
  }

  // A new adjacency with every tail merged into the CSR. Does not modify *this.
  std::unique_ptr<Adjacency> Merged() const {
    auto adj = std::make_unique<Adjacency>();
    adj->num_nodes_ = num_nodes_;
    adj->csr_nodes_ = num_nodes_;
    adj->offsets_.resize(static_cast<size_t>(num_nodes_) + 1);
    adj->ids_.resize(num_edges());
    adj->times_.resize(num_edges());
    adj->tail_of_.assign(num_nodes_, kNoTail);
    uint64_t out = 0;
    for (NodeId v = 0; v < num_nodes_; ++v) {
      adj->offsets_[v] = out;
      Slice a = CsrSlice(v);
      Slice b = TailSlice(v);
      size_t i = 0, j = 0;
      while (i < a.size || j < b.size) {
        if (j == b.size || (i < a.size && a.times[i] <= b.times[j])) {
          adj->ids_[out] = a.ids[i];
          adj->times_[out++] = a.times[i++];
        } else {
          adj->ids_[out] = b.ids[j];
          adj->times_[out++] = b.times[j++];
        }
      }
    }
    adj->offsets_[num_nodes_] = out;
    return adj;
  }

  int Recent(NodeId v, TimeWindow w, int n, NodeId* ids, Timestamp* times) const {
    if (n <= 0 || v >= num_nodes_ || w.begin > w.end || (w.begin == w.end && w.ties <= 0)) return 0;
    // Tied edges at w.end: the CSR's were added before the tail's, so they come first.
    int32_t ties = w.ties;
    Slice a = Window(CsrSlice(v), w, n, &ties);
    Slice b = Window(TailSlice(v), w, n, &ties);
    size_t k = std::min<size_t>(static_cast<size_t>(n), a.size + b.size);
    if (b.size == 0) {
      const size_t from = a.size - k;
      if (ids != nullptr) std::memcpy(ids, a.ids + from, k * sizeof(NodeId));
      if (times != nullptr) std::memcpy(times, a.times + from, k * sizeof(Timestamp));
      return static_cast<int>(k);
    }
    size_t i = a.size, j = b.size;
    for (size_t out = k; out-- > 0;) {
      const bool take_b = i == 0 || (j > 0 && b.times[j - 1] >= a.times[i - 1]);
      const Slice& s = take_b ? b : a;
      size_t& idx = take_b ? j : i;
      --idx;
      if (ids != nullptr) ids[out] = s.ids[idx];
      if (times != nullptr) times[out] = s.times[idx];
    }
    return static_cast<int>(k);
  }

  int64_t Degree(NodeId v, Timestamp before) const {
    if (v >= num_nodes_) return 0;
    return CountBefore(CsrSlice(v), before) + CountBefore(TailSlice(v), before);
  }

  void All(NodeId v, std::vector<NodeId>* ids, std::vector<Timestamp>* times) const {
    if (ids != nullptr) ids->clear();
    if (times != nullptr) times->clear();
    if (v >= num_nodes_) return;
    Slice a = CsrSlice(v);
    Slice b = TailSlice(v);
    size_t i = 0, j = 0;
    while (i < a.size || j < b.size) {
      const bool take_a = j == b.size || (i < a.size && a.times[i] <= b.times[j]);
      const Slice& s = take_a ? a : b;
      size_t& idx = take_a ? i : j;
      if (ids != nullptr) ids->push_back(s.ids[idx]);
      if (times != nullptr) times->push_back(s.times[idx]);
      ++idx;
    }
  }

  int64_t MemoryBytes() const {
    int64_t bytes = offsets_.capacity() * sizeof(uint64_t) + ids_.capacity() * sizeof(NodeId) +
                    times_.capacity() * sizeof(Timestamp) +
                    tail_of_.capacity() * sizeof(uint32_t) + tails_.capacity() * sizeof(Tail);
    for (const Tail& t : tails_) {
      bytes += t.ids.capacity() * sizeof(NodeId) + t.times.capacity() * sizeof(Timestamp);
    }
    return bytes;
  }

 private:
  static constexpr uint32_t kNoTail = ~uint32_t{0};

  struct Tail {
    std::vector<NodeId> ids;
    std::vector<Timestamp> times;
  };
  struct Slice {
    const NodeId* ids = nullptr;
    const Timestamp* times = nullptr;
    size_t size = 0;
  };

  Slice CsrSlice(NodeId v) const {
    if (v >= csr_nodes_) return {};
    const uint64_t b = offsets_[v];
    return {ids_.data() + b, times_.data() + b, static_cast<size_t>(offsets_[v + 1] - b)};
  }
  Slice TailSlice(NodeId v) const {
    const uint32_t t = tail_of_[v];
    if (t == kNoTail) return {};
    const Tail& tail = tails_[t];
    return {tail.ids.data(), tail.times.data(), tail.ids.size()};
  }

  // The part of `s` inside `w`, cut to its last `n` edges (all a query can use). Of the edges
  // at time w.end it keeps the first `*ties` and takes their number off `*ties`.
  static Slice Window(Slice s, TimeWindow w, int n, int32_t* ties) {
    if (s.size == 0) return s;
    const Timestamp* end = s.times + s.size;
    const Timestamp* hi = end[-1] < w.end ? end : std::lower_bound(s.times, end, w.end);
    if (*ties > 0 && hi != end && *hi == w.end) {
      const auto tied = std::min<int64_t>(*ties, std::upper_bound(hi, end, w.end) - hi);
      hi += tied;
      *ties -= static_cast<int32_t>(tied);
    }
    const Timestamp* floor = hi - s.times > n ? hi - n : s.times;
    const Timestamp* lo =
        w.begin == kMinTime || *floor >= w.begin ? floor : std::lower_bound(floor, hi, w.begin);
    return {s.ids + (lo - s.times), lo, static_cast<size_t>(hi - lo)};
  }
  static int64_t CountBefore(Slice s, Timestamp before) {
    return std::lower_bound(s.times, s.times + s.size, before) - s.times;
  }

  // Stable-sorts each CSR slice by time (slices already in order, the usual case, are skipped).
  void SortSlices() {
    std::vector<std::pair<Timestamp, NodeId>> buf;
    for (NodeId v = 0; v < csr_nodes_; ++v) {
      const uint64_t b = offsets_[v], e = offsets_[v + 1];
      if (std::is_sorted(times_.begin() + b, times_.begin() + e)) continue;
      buf.clear();
      for (uint64_t k = b; k < e; ++k) buf.emplace_back(times_[k], ids_[k]);
      std::stable_sort(buf.begin(), buf.end(),
                       [](const auto& x, const auto& y) { return x.first < y.first; });
      for (uint64_t k = b; k < e; ++k) {
        times_[k] = buf[k - b].first;
        ids_[k] = buf[k - b].second;
      }
    }
  }

  NodeId num_nodes_ = 0;
  NodeId csr_nodes_ = 0;
  std::vector<uint64_t> offsets_;  // csr_nodes_ + 1 entries.
  std::vector<NodeId> ids_;        // Structure of arrays: ids and times of CSR edges.
  std::vector<Timestamp> times_;
  std::vector<uint32_t> tail_of_;  // Per node: index into tails_, or kNoTail.
  std::vector<Tail> tails_;
  int64_t tail_edges_ = 0;
};

}  // namespace internal

namespace {
// Debian's abseil 20220623 is built with Mutex deadlock detection on (abort on a cycle), and its
// bookkeeping reports cycles that the code cannot form (seen: after Add() released mu_, the next
// GraphStore::Ingest aborted, claiming mu_ was still held while taking ingest_mu_; verified
// balanced lock/unlock in gdb). Lock order here is fixed and
// documented (TemporalGraph: write_mu_ -> mu_; GraphStore: ingest_mu_ -> everything else), so
// the detector is turned off once per process, before the first graph locks anything.
void DisableBrokenDeadlockDetection() {
  static const bool done = [] {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    return true;
  }();
  (void)done;
}
}  // namespace

TemporalGraph::TemporalGraph()
    : user_items_(std::make_unique<internal::Adjacency>()),
      item_users_(std::make_unique<internal::Adjacency>()) {
  DisableBrokenDeadlockDetection();
}

TemporalGraph::~TemporalGraph() = default;

std::unique_ptr<TemporalGraph> TemporalGraph::Build(std::span<const Interaction> interactions,
                                                    NodeId num_users, NodeId num_items) {
  for (const Interaction& x : interactions) {
    num_users = std::max(num_users, x.user + 1);
    num_items = std::max(num_items, x.item + 1);
  }
  const Interaction* e = interactions.data();
  auto graph = std::make_unique<TemporalGraph>();
  absl::MutexLock lock(&graph->mu_);
  graph->user_items_ = internal::Adjacency::Build(
      num_users, interactions.size(), [e](size_t k) { return e[k].user; },
      [e](size_t k) { return e[k].item; }, [e](size_t k) { return e[k].time; });
  graph->item_users_ = internal::Adjacency::Build(
      num_items, interactions.size(), [e](size_t k) { return e[k].item; },
      [e](size_t k) { return e[k].user; }, [e](size_t k) { return e[k].time; });
  graph->user_items_->EnsureNodes(num_users);
  graph->item_users_->EnsureNodes(num_items);
  return graph;
}

void TemporalGraph::Add(std::span<const Interaction> interactions) {
  absl::MutexLock write_lock(&write_mu_);
  {
    absl::WriterMutexLock lock(&mu_);
    for (const Interaction& x : interactions) {
      user_items_->EnsureNodes(x.user + 1);
      item_users_->EnsureNodes(x.item + 1);
      user_items_->Insert(x.user, x.item, x.time);
      item_users_->Insert(x.item, x.user, x.time);
    }
  }
  // Only this thread mutates (write_mu_), so the merge can read under a shared lock while
  // readers carry on; the exclusive lock covers just the swap.
  std::unique_ptr<internal::Adjacency> users_merged, items_merged;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (user_items_->NeedsMerge()) users_merged = user_items_->Merged();
    if (item_users_->NeedsMerge()) items_merged = item_users_->Merged();
  }
  if (users_merged == nullptr && items_merged == nullptr) return;
  {
    absl::WriterMutexLock lock(&mu_);
    if (users_merged != nullptr) std::swap(user_items_, users_merged);
    if (items_merged != nullptr) std::swap(item_users_, items_merged);
  }
  // The old adjacencies are freed here, outside the lock.
}

TemporalGraph::ReadView TemporalGraph::Read() const { return ReadView(this); }

int64_t TemporalGraph::MemoryBytes() const {
  absl::ReaderMutexLock lock(&mu_);
  return user_items_->MemoryBytes() + item_users_->MemoryBytes();
}

TemporalGraph::ReadView::ReadView(const TemporalGraph* graph) : graph_(graph) {
  graph_->mu_.ReaderLock();
}

TemporalGraph::ReadView::ReadView(ReadView&& other) noexcept : graph_(other.graph_) {
  other.graph_ = nullptr;
}

TemporalGraph::ReadView::~ReadView() {
  if (graph_ != nullptr) graph_->mu_.ReaderUnlock();
}

// The view holds mu_ shared for its whole life; the analysis cannot see that.
NodeId TemporalGraph::ReadView::num_users() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return graph_->user_items_->num_nodes();
}
NodeId TemporalGraph::ReadView::num_items() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return graph_->item_users_->num_nodes();
}
int64_t TemporalGraph::ReadView::num_interactions() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return graph_->user_items_->num_edges();
}
int TemporalGraph::ReadView::RecentItems(NodeId user, TimeWindow window, int n, NodeId* items,
                                         Timestamp* times) const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return graph_->user_items_->Recent(user, window, n, items, times);
}
int TemporalGraph::ReadView::RecentUsers(NodeId item, TimeWindow window, int n, NodeId* users,
                                         Timestamp* times) const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return graph_->item_users_->Recent(item, window, n, users, times);
}
int64_t TemporalGraph::ReadView::UserDegree(NodeId user, Timestamp before) const
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return graph_->user_items_->Degree(user, before);
}
int64_t TemporalGraph::ReadView::ItemDegree(NodeId item, Timestamp before) const
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return graph_->item_users_->Degree(item, before);
}
void TemporalGraph::ReadView::UserSequence(NodeId user, std::vector<NodeId>* items,
                                           std::vector<Timestamp>* times) const
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  graph_->user_items_->All(user, items, times);
}

}  // namespace dgsr::store
