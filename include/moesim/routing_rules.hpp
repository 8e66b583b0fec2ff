#pragma once
// Per-token routing rules (MODEL.md §2): top-k selection and the device- and
// group-limited constraints. Each call handles one token, writes into
// caller-owned buffers and never allocates once its scratch is sized.
#include <cstdint>
#include <span>
#include <vector>

namespace moesim {

// Top-k of value[0..E) among allowed experts (allowed == nullptr: all), in
// rank order: descending value, ties to the lower index; never an index
// twice. Writes k entries to out; if fewer than k experts are allowed the
// remaining entries are -1. Values must not be NaN. No allocation; without a
// mask (k ≤ 16 ≤ E ≤ 1024) a lower bound prunes to about k candidates, which
// are ranked by counting; otherwise O(E·k) insertion into the output.
void select_topk(const float* value, const std::uint8_t* allowed, int E, int k, std::int32_t* out);

// Number of top values summed per group in group-limited routing:
// ceil(k/M) (DeepSeek-V3 arXiv 2412.19437 §2.1.2 "Node-Limited Routing":
// "the sum of the highest K_r/M affinity scores of the experts distributed
// on each node").
int group_top_values(int k, int M);

// Scratch for the limited-routing functions; one per thread.
struct LimitedRoutingScratch {
  std::vector<float> score;        // per device or group
  std::vector<std::int32_t> top;   // selected devices/groups, or one group's top values
  std::vector<std::int32_t> count; // experts per device or group
  std::vector<float> values;       // groups × ceil(k/M): each group's top values
};

// Device-limited routing (DeepSeek-V2 arXiv 2405.04434 §2.2.2): the score of
// device d is max s_i over its experts (device_of_expert[i] == d; a device
// without experts scores -inf); the top-M devices (ties: lower device index)
// are kept and allowed[i] = 1 exactly for experts on them. If those hold
// fewer than k experts (a placement can leave a device with fewer than E/D
// first replicas), further devices are kept in the same order until k
// experts are allowed, so every token gets its k experts. s holds the token's
// E unbiased scores. Requires 1 <= M <= D and k <= E.
void device_limited_allowed(std::span<const float> s, std::span<const std::int32_t> device_of_expert,
                            int D, int M, int k, LimitedRoutingScratch& scratch,
                            std::span<std::uint8_t> allowed);

// Group/node-limited routing (DeepSeek-V3 arXiv 2412.19437 §2.1.2): experts
// form `groups` contiguous groups of E/groups; the score of a group is the
// sum of its top-ceil(k/M) values of s+b (biased, E entries); the top-M
// groups (ties: lower group index) are kept and allowed[i] = 1 exactly for
// their experts. Requires E % groups == 0 and 1 <= M <= groups.
void group_limited_allowed(std::span<const float> biased, int groups, int M, int k,
                           LimitedRoutingScratch& scratch, std::span<std::uint8_t> allowed);
// The same with any grouping: expert i belongs to group_of_expert[i] in
// [0, groups) (node-limited routing on the nodes where a placement put the
// token's replicas). Groups may differ in size; if the top M hold fewer than
// k experts, further groups are kept in score order until k are allowed. A
// group with equal sizes and contiguous ids gives the contiguous version's mask.
void group_limited_allowed(std::span<const float> biased, std::span<const std::int32_t> group_of_expert, int groups,
                           int M, int k, LimitedRoutingScratch& scratch, std::span<std::uint8_t> allowed);

}  // namespace moesim
