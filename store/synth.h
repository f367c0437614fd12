// A synthetic interaction generator for the quick start and fast tests. Deterministic by seed
// (same options -> byte-identical events on every platform: it uses its own PRNG and integer
// arithmetic only), with the structure a sequential recommender should exploit:
//   - power-law item popularity (Zipf, exponent `zipf_exponent`);
//   - item-to-item transitions: every item has a few fixed successors; with probability
//     `transition_prob` a user's next item is a successor of their previous one, so a model of
//     the sequence beats popularity by a wide margin;
//   - drifting interests: items fall into `num_topics` topics, each user has a current topic that
//     switches with probability `drift_prob` per event, and part of the non-transition picks
//     come from that topic;
//   - timestamps: each user starts at a random point of a 30-day window after `start_time`, then
//     strictly increasing times with exponential gaps (mean `mean_gap_s`).
// A user never repeats an item. Events come back sorted by time (ties: user order), with event
// ids "synth:<seed>:<user>:<k>", so writing the same data twice adds nothing.
//
// Usage:
//   SynthOptions o; o.num_users = 2000; o.num_items = 1000; o.seed = 1;
//   std::vector<Event> events = GenerateSynthetic(o);
#ifndef DGSR_STORE_SYNTH_H_
#define DGSR_STORE_SYNTH_H_

#include <cstdint>
#include <vector>

#include "store/graph_store.h"

namespace dgsr::store {

struct SynthOptions {
  int num_users = 2000;
  int num_items = 1000;
  int events_per_user = 50;  // Mean; each user gets a uniform count in [mean/2, 3*mean/2].
  uint64_t seed = 1;

  double zipf_exponent = 1.0;
  int successors_per_item = 3;
  double transition_prob = 0.6;
  int num_topics = 20;
  double topic_prob = 0.25;  // Of the events that are not transitions: pick from the topic.
  double drift_prob = 0.05;
  Timestamp start_time = 1600000000;  // 2020-09-13.
  int64_t mean_gap_s = 3600;
};

// User ids "u<k>", item ids "i<k>". Requires num_users >= 1 and num_items >= 2.
std::vector<Event> GenerateSynthetic(const SynthOptions& options);

}  // namespace dgsr::store

#endif  // DGSR_STORE_SYNTH_H_
