#pragma once
// Real routing records of many MoE layers (MODEL.md §9, FORMATS.md
// "Additions"): per-token traces and aggregate per-layer loads, read into
// plain arrays that replay, `moesim fit`, `moesim stats` and `moesim place`
// share. Every problem with a file is an InputError naming the file and the
// line (JSONL), index (NPY) or JSON pointer (loads).
#include <cstdint>
#include <string>
#include <vector>

namespace moesim {

// Every token's choices in every layer, in token order.
struct RoutingTrace {
  std::vector<int> layer_ids;        // L distinct ids, ascending (dense layers are absent)
  int experts = 0;                   // E: given by the caller, or 1 + the largest expert id seen
  int top_k = 0;                     // k, the same for every token and layer
  std::vector<std::int32_t> expert;  // tokens × L × k: layer by layer, each layer's k experts in rank order

  int layers() const { return int(layer_ids.size()); }
  std::int64_t tokens() const {
    const std::size_t per = std::size_t(layers()) * std::size_t(top_k);
    return per == 0 ? 0 : std::int64_t(expert.size() / per);
  }
  const std::int32_t* at(std::int64_t token, int layer) const {
    return expert.data() + (std::size_t(token) * layers() + std::size_t(layer)) * top_k;
  }
};

// The `pairs` JSONL format (`../shared/data/traces/`): one token per line, a
// JSON array of [layer, expert] pairs, every layer's k experts in rank order,
// layers in any order but each layer either present with k distinct experts
// or absent on every line. Blank lines are skipped. `max_tokens` > 0 stops
// after that many tokens.
RoutingTrace read_pairs_trace(const std::string& path, std::int64_t max_tokens = 0);
// NPY integer expert ids (int16/int32/int64, little-endian, C order) of shape
// [T, k] (one layer, id 0) or [T, L, k] (layers 0..L−1): the layout of vLLM's
// routed-experts replay and Megatron-Core's router replay.
RoutingTrace read_npy_choices(const std::string& path);
// Either of the above by format name ("pairs" or "npy").
RoutingTrace read_routing_trace(const std::string& path, const std::string& format);

// Appends one token's line of the pairs format (its choices in every layer of
// `layer_ids`, `choices` = L × k in rank order) to `out`, newline included.
void append_pairs_line(std::string& out, const std::vector<int>& layer_ids, const std::int32_t* choices, int top_k);

// Aggregate loads of many layers: a JSON array `[[load per expert] per layer]`
// (a flat array is one layer), or SGLang's expert_distribution_recorder
// `{"logical_count": [[...], ...]}`, whose all-zero layers are the model's
// dense layers: skipped, the ids of the others kept.
struct LayerLoads {
  std::vector<int> layer_ids;             // ids of the kept layers (row index in the file)
  std::vector<std::vector<double>> load;  // layers × experts, finite and ≥ 0
  int layers() const { return int(load.size()); }
  int experts() const { return load.empty() ? 0 : int(load[0].size()); }
};
LayerLoads read_layer_loads(const std::string& path);

}  // namespace moesim
