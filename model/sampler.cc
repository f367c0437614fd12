#include "model/sampler.h"

#include <algorithm>
#include <cstring>

namespace dgsr::model {

using store::NodeId;
using store::Timestamp;
using store::TimeWindow;

namespace {

// NodeId -> local row, open addressing; Clear() is O(1) through a generation stamp.
class NodeIndex {
 public:
  void Clear() {
    if (++generation_ == 0) {
      std::fill(stamps_.begin(), stamps_.end(), 0);
      generation_ = 1;
    }
    size_ = 0;
  }
  // Returns the row of `id`, or -1.
  int32_t Find(NodeId id) const {
    if (stamps_.empty()) return -1;
    for (size_t slot = Hash(id) & mask_;; slot = (slot + 1) & mask_) {
      if (stamps_[slot] != generation_) return -1;
      if (keys_[slot] == id) return values_[slot];
    }
  }
  // Inserts id -> row (id must be absent).
  void Insert(NodeId id, int32_t row) {
    if ((size_ + 1) * 2 > stamps_.size()) Grow();
    size_t slot = Hash(id) & mask_;
    while (stamps_[slot] == generation_) slot = (slot + 1) & mask_;
    stamps_[slot] = generation_;
    keys_[slot] = id;
    values_[slot] = row;
    ++size_;
  }

 private:
  static size_t Hash(NodeId id) { return (static_cast<uint64_t>(id) * 0x9E3779B97F4A7C15ull) >> 20; }
  void Grow() {
    std::vector<uint32_t> stamps = std::move(stamps_);
    std::vector<NodeId> keys = std::move(keys_);
    std::vector<int32_t> values = std::move(values_);
    size_t capacity = std::max<size_t>(1024, stamps.size() * 2);
    stamps_.assign(capacity, 0);
    keys_.resize(capacity);
    values_.resize(capacity);
    mask_ = capacity - 1;
    uint32_t old_generation = generation_;
    generation_ = 1;
    size_ = 0;
    for (size_t i = 0; i < stamps.size(); ++i) {
      if (stamps[i] == old_generation) Insert(keys[i], values[i]);
    }
  }
  std::vector<uint32_t> stamps_;
  std::vector<NodeId> keys_;
  std::vector<int32_t> values_;
  size_t mask_ = 0;
  size_t size_ = 0;
  uint32_t generation_ = 1;
};

// The nodes of one type in one sample, in BFS (hop) order, with their neighbour lists.
struct NodeSet {
  std::vector<NodeId> ids;
  std::vector<int32_t> hop;
  std::vector<int32_t> nbr_begin;  // into `edges`
  std::vector<int32_t> nbr_len;
  std::vector<int32_t> edges;      // rows of the other node type
  NodeIndex index;

  void Clear() {
    ids.clear();
    hop.clear();
    nbr_begin.clear();
    nbr_len.clear();
    edges.clear();
    index.Clear();
  }
  int32_t Add(NodeId id, int32_t h) {
    int32_t row = static_cast<int32_t>(ids.size());
    ids.push_back(id);
    hop.push_back(h);
    nbr_begin.push_back(0);
    nbr_len.push_back(0);
    index.Insert(id, row);
    return row;
  }
};

}  // namespace

struct SubgraphSampler::Local {
  NodeSet users;
  NodeSet items;
  int32_t last_item = -1;
  // Scratch for one neighbour query.
  std::vector<NodeId> buf_ids;
  std::vector<Timestamp> buf_times;
  // Authors' variant: candidate users of the current round with their latest edge time.
  std::vector<std::pair<Timestamp, NodeId>> candidates;
  std::vector<uint8_t> dropped;  // per user row
  // The anchor's edges that its own window and the others' window see differently (items,
  // sorted). `extra` are visible to the anchor only: its tied edges at the request's time, and
  // with an earlier others_before also its edges from then on. `hidden` only to the others'
  // window: with a later others_before, the anchor's edges from the request's time on, less its
  // tied ones.
  std::vector<NodeId> extra, hidden;
};

int64_t Blocks::num_edges() const {
  int64_t n = 0;
  for (int64_t l : user_len) n += l;
  for (int64_t l : item_len) n += l;
  return n;
}

void Blocks::Clear() {
  num_anchors = 0;
  user_ids.clear();
  item_ids.clear();
  user_width = item_width = 1;
  user_nbr.clear();
  user_len.clear();
  item_nbr.clear();
  item_len.clear();
  layer_users.clear();
  layer_items.clear();
  last_item.clear();
}

SubgraphSampler::SubgraphSampler(const DgsrConfig& config, Mode mode) : config_(config), mode_(mode) {}
SubgraphSampler::~SubgraphSampler() = default;

TimeWindow SubgraphSampler::WindowFor(const store::TemporalGraph::ReadView& graph,
                                      const SampleRequest& request) const {
  TimeWindow window{store::kMinTime, request.before, request.ties};
  if (config_.sampler_variant == SamplerVariant::kAuthors) {
    // start = t_0 if u has at most n items before t, else the time of its (n+1)-th most recent.
    const int n = config_.max_neighbors + 1;
    thread_local std::vector<Timestamp> times;
    times.resize(n);
    int count = graph.RecentItems(request.user, window, n, nullptr, times.data());
    if (count > 0) window.begin = times[0];
  }
  return window;
}

int SubgraphSampler::FixAnchorEdges(NodeId item, const SampleRequest& request, int count,
                                    Local* local) const {
  const int n = config_.max_neighbors;
  NodeId* ids = local->buf_ids.data();
  Timestamp* times = local->buf_times.data();
  const auto [hidden_lo, hidden_hi] = std::equal_range(local->hidden.begin(), local->hidden.end(), item);
  if (int to_hide = static_cast<int>(hidden_hi - hidden_lo); to_hide > 0) {
    // The hidden edges are the anchor's newest to the item (its tied history at the request's
    // time precedes them), so they are removed newest first, and only as many as there are.
    int kept = count;
    for (int k = count - 1; k >= 0; --k) {
      if (to_hide > 0 && ids[k] == request.user && times[k] >= request.before) {
        --to_hide;
        std::memmove(ids + k, ids + k + 1, (kept - k - 1) * sizeof(NodeId));
        std::memmove(times + k, times + k + 1, (kept - k - 1) * sizeof(Timestamp));
        --kept;
      }
    }
    count = kept;
  }
  const auto [lo, hi] = std::equal_range(local->extra.begin(), local->extra.end(), item);
  const int extra = std::min<int>(n, static_cast<int>(hi - lo));
  // The item's n most recent users: its last edges in the others' window, then the anchor's own.
  const int keep = std::min(count, n - extra);
  std::memmove(ids, ids + (count - keep), keep * sizeof(NodeId));
  std::memmove(times, times + (count - keep), keep * sizeof(Timestamp));
  std::fill(ids + keep, ids + keep + extra, request.user);
  std::fill(times + keep, times + keep + extra, request.before);
  return keep + extra;
}

void SubgraphSampler::SampleOne(const store::TemporalGraph::ReadView& graph,
                                const SampleRequest& request, Local* local) {
  const int n = config_.max_neighbors;
  const int max_hop = 2 * config_.sampler_order - 1;
  const int horizon = mode_ == Mode::kFull ? max_hop : std::min(config_.BlockDepth(), max_hop);
  const bool authors = config_.sampler_variant == SamplerVariant::kAuthors;
  const TimeWindow own_window = WindowFor(graph, request);
  const Timestamp others_end = request.others_before.value_or(request.before);
  // Everyone else's edges. The authors' variant's start is a time of the anchor's; on another
  // clock (others_before set: positions for times) it means nothing for other users.
  const TimeWindow window{request.others_before ? store::kMinTime : own_window.begin, others_end, 0};
  // Edges of the anchor that the two windows see differently (`extra`, `hidden`: Local).
  // The anchor's degree bounds both lists; only another clock (others_before) needs it.
  const int degree = request.others_before ? static_cast<int>(graph.UserDegree(request.user, store::kMaxTime)) : 0;
  const int most_extra = others_end >= request.before ? std::max(request.ties, 0) : degree;
  local->extra.resize(most_extra);
  local->extra.resize(graph.RecentItems(request.user, {others_end, request.before, request.ties}, most_extra,
                                        local->extra.data(), nullptr));
  std::sort(local->extra.begin(), local->extra.end());
  local->hidden.clear();
  int most_hidden = 0;
  if (others_end > request.before) {
    // Oldest first: the first `ties` of them (at exactly the request's time) are history.
    local->hidden.resize(degree);
    local->hidden.resize(graph.RecentItems(request.user, {request.before, others_end, 0}, degree,
                                           local->hidden.data(), nullptr));
    const int64_t history = std::min<int64_t>(std::max(request.ties, 0), static_cast<int64_t>(local->hidden.size()));
    local->hidden.erase(local->hidden.begin(), local->hidden.begin() + history);
    std::sort(local->hidden.begin(), local->hidden.end());
    most_hidden = static_cast<int>(local->hidden.size());
  }

  NodeSet& users = local->users;
  NodeSet& items = local->items;
  users.Clear();
  items.Clear();
  local->dropped.clear();
  // Items' user lists are fetched with room for the anchor's hidden edges to them.
  auto hidden_to = [local](NodeId item) {
    const auto [lo, hi] = std::equal_range(local->hidden.begin(), local->hidden.end(), item);
    return static_cast<int>(hi - lo);
  };
  local->buf_ids.resize(n + most_hidden);
  local->buf_times.resize(n + most_hidden);
  users.Add(request.user, 0);
  local->dropped.push_back(0);

  size_t frontier_begin = 0;  // First row of the current hop in its NodeSet.
  for (int hop = 0; hop < horizon; ++hop) {
    const bool from_users = hop % 2 == 0;
    NodeSet& src = from_users ? users : items;
    NodeSet& dst = from_users ? items : users;
    const size_t frontier_end = src.ids.size();
    const size_t next_begin = dst.ids.size();
    local->candidates.clear();
    for (size_t row = frontier_begin; row < frontier_end; ++row) {
      if (from_users && local->dropped[row]) continue;
      int count = from_users
                      ? graph.RecentItems(src.ids[row], row == 0 ? own_window : window, n,
                                          local->buf_ids.data(), local->buf_times.data())
                      : graph.RecentUsers(src.ids[row], window, n + hidden_to(src.ids[row]),
                                          local->buf_ids.data(), local->buf_times.data());
      if (!from_users && (!local->extra.empty() || !local->hidden.empty())) {
        count = FixAnchorEdges(src.ids[row], request, count, local);
      }
      src.nbr_begin[row] = static_cast<int32_t>(src.edges.size());
      src.nbr_len[row] = count;
      for (int k = 0; k < count; ++k) {
        NodeId id = local->buf_ids[k];
        int32_t nrow = dst.index.Find(id);
        if (nrow < 0) {
          nrow = dst.Add(id, hop + 1);
          if (!from_users) local->dropped.push_back(0);
        }
        src.edges.push_back(nrow);
        if (authors && !from_users && static_cast<size_t>(nrow) >= next_begin) {
          local->candidates.emplace_back(local->buf_times[k], id);
        }
      }
    }
    if (authors && !from_users && users.ids.size() - next_begin > static_cast<size_t>(n)) {
      // Keep the n most recent new users (latest edge time; ties: smaller id); the rest stay leaves.
      auto& c = local->candidates;
      std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second < b.second : a.first > b.first;
      });
      c.erase(std::unique(c.begin(), c.end(),
                          [](const auto& a, const auto& b) { return a.second == b.second; }),
              c.end());
      std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      });
      for (size_t row = next_begin; row < users.ids.size(); ++row) local->dropped[row] = 1;
      for (int k = 0; k < n; ++k) local->dropped[users.index.Find(c[k].second)] = 0;
    }
    if (dst.ids.size() == next_begin) break;  // Nothing new: the sub-graph is complete.
    frontier_begin = next_begin;  // Hop+1's frontier: the nodes just added (the other type).
  }
  local->last_item = -1;
  if (users.nbr_len[0] > 0) local->last_item = users.edges[users.nbr_begin[0] + users.nbr_len[0] - 1];
}

void SubgraphSampler::SampleBatch(const store::TemporalGraph::ReadView& graph,
                                  std::span<const SampleRequest> requests, Blocks* out) {
  out->Clear();
  const size_t batch = requests.size();
  if (locals_.size() < batch) locals_.resize(batch);
  int max_hop_seen = 0;
  for (size_t s = 0; s < batch; ++s) {
    SampleOne(graph, requests[s], &locals_[s]);
    const Local& l = locals_[s];
    if (!l.users.hop.empty()) max_hop_seen = std::max(max_hop_seen, l.users.hop.back());
    if (!l.items.hop.empty()) max_hop_seen = std::max(max_hop_seen, l.items.hop.back());
  }
  out->num_anchors = static_cast<int64_t>(batch);

  // Global row order: by hop, then by sample, then by local (BFS) order. Because a sample's
  // local rows are already sorted by hop, one pass per hop assigns every row.
  const int hops = max_hop_seen + 1;
  std::vector<std::vector<int32_t>> user_global(batch), item_global(batch);
  std::vector<int64_t> users_up_to_hop(hops, 0), items_up_to_hop(hops, 0);
  std::vector<size_t> ucur(batch, 0), icur(batch, 0);
  for (size_t s = 0; s < batch; ++s) {
    user_global[s].resize(locals_[s].users.ids.size());
    item_global[s].resize(locals_[s].items.ids.size());
  }
  for (int hop = 0; hop < hops; ++hop) {
    const bool user_hop = hop % 2 == 0;
    for (size_t s = 0; s < batch; ++s) {
      const NodeSet& set = user_hop ? locals_[s].users : locals_[s].items;
      std::vector<int32_t>& global = user_hop ? user_global[s] : item_global[s];
      std::vector<int64_t>& ids = user_hop ? out->user_ids : out->item_ids;
      size_t& cur = user_hop ? ucur[s] : icur[s];
      while (cur < set.ids.size() && set.hop[cur] == hop) {
        global[cur] = static_cast<int32_t>(ids.size());
        ids.push_back(set.ids[cur]);
        ++cur;
      }
    }
    users_up_to_hop[hop] = static_cast<int64_t>(out->user_ids.size());
    items_up_to_hop[hop] = static_cast<int64_t>(out->item_ids.size());
  }
  auto rows_within = [&](const std::vector<int64_t>& up_to, int hop) -> int64_t {
    if (hop < 0) return 0;
    return up_to[std::min(hop, hops - 1)];
  };

  const int depth = config_.BlockDepth();
  const bool full = mode_ == Mode::kFull;
  const int64_t eu = full ? static_cast<int64_t>(out->user_ids.size()) : rows_within(users_up_to_hop, depth - 1);
  const int64_t ei = full ? static_cast<int64_t>(out->item_ids.size()) : rows_within(items_up_to_hop, depth - 1);
  for (int l = 1; l <= config_.layers; ++l) {
    out->layer_users.push_back(full ? eu : rows_within(users_up_to_hop, depth - l));
    out->layer_items.push_back(full ? ei : rows_within(items_up_to_hop, depth - l));
  }

  // Neighbour lists of the destination rows, translated to global rows.
  auto fill = [&](bool user_side, int64_t rows, int64_t* width, std::vector<int64_t>* nbr,
                  std::vector<int64_t>* len) {
    // Row r of the global order -> (sample, local row): walk samples hop by hop as above.
    std::vector<std::pair<int32_t, int32_t>> origin(rows);
    for (size_t s = 0; s < batch; ++s) {
      const std::vector<int32_t>& global = user_side ? user_global[s] : item_global[s];
      for (size_t k = 0; k < global.size(); ++k) {
        if (global[k] < rows) origin[global[k]] = {static_cast<int32_t>(s), static_cast<int32_t>(k)};
      }
    }
    int64_t w = 1;
    for (int64_t r = 0; r < rows; ++r) {
      const NodeSet& set = user_side ? locals_[origin[r].first].users : locals_[origin[r].first].items;
      w = std::max<int64_t>(w, set.nbr_len[origin[r].second]);
    }
    *width = w;
    nbr->assign(rows * w, 0);
    len->resize(rows);
    for (int64_t r = 0; r < rows; ++r) {
      const auto [s, k] = origin[r];
      const NodeSet& set = user_side ? locals_[s].users : locals_[s].items;
      const std::vector<int32_t>& other = user_side ? item_global[s] : user_global[s];
      const int32_t count = set.nbr_len[k];
      (*len)[r] = count;
      const int32_t* e = set.edges.data() + set.nbr_begin[k];
      int64_t* dst = nbr->data() + r * w;
      for (int32_t j = 0; j < count; ++j) dst[j] = other[e[j]];
    }
  };
  fill(true, eu, &out->user_width, &out->user_nbr, &out->user_len);
  fill(false, ei, &out->item_width, &out->item_nbr, &out->item_len);

  out->last_item.resize(batch);
  for (size_t s = 0; s < batch; ++s) {
    out->last_item[s] = locals_[s].last_item < 0 ? -1 : item_global[s][locals_[s].last_item];
  }
}

}  // namespace dgsr::model
