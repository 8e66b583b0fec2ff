// Top-k selection in rank order (MODEL.md §2: "top-k of s + b ... Ties: lower
// expert index wins. Never the same expert twice for one token").
#include <algorithm>
#include <limits>

#include "moesim/routing_rules.hpp"

namespace moesim {

namespace {

constexpr int kChunk = 16;  // one AVX-512 register of floats

// out[0..n) stays sorted by (value desc, index asc). Scanning indices in
// increasing order and moving an entry only past strictly smaller values
// makes an equal value never overtake an earlier (lower) index.
inline void insert(const float* value, int i, int k, int& n, std::int32_t* out) {
  const float v = value[i];
  int pos;
  if (n < k) {
    pos = n++;
  } else {
    if (!(v > value[out[k - 1]])) return;
    pos = k - 1;  // evict the current last
  }
  while (pos > 0 && value[out[pos - 1]] < v) {
    out[pos] = out[pos - 1];
    --pos;
  }
  out[pos] = i;
}

// A lower bound on the k-th largest value: the k-th largest of the chunk
// maxima (k chunks each hold an element at least that large). −inf when there
// are fewer than k chunks. Written as fixed-width loops that vectorise.
float kth_chunk_max(const float* value, int E, int k) {
  const int chunks = E / kChunk;
  if (chunks < k || chunks > 64) return -std::numeric_limits<float>::infinity();
  float maxima[64];
  for (int c = 0; c < chunks; ++c) {
    float m = value[c * kChunk];
    for (int j = 1; j < kChunk; ++j) m = std::max(m, value[c * kChunk + j]);
    maxima[c] = m;
  }
  std::nth_element(maxima, maxima + (k - 1), maxima + chunks, std::greater<float>());
  return maxima[k - 1];
}

}  // namespace

void select_topk(const float* value, const std::uint8_t* allowed, int E, int k, std::int32_t* out) {
  if (k <= 0) return;
  int n = 0;
  if (allowed == nullptr) {
    // Only values ≥ the bound can be in the top k; scanning them in index
    // order with the same insertion keeps the result (and tie-breaks) exact.
    const float bound = kth_chunk_max(value, E, k);
    for (int i = 0; i < E; ++i)
      if (value[i] >= bound) insert(value, i, k, n, out);
  } else {
    for (int i = 0; i < E; ++i)
      if (allowed == nullptr || allowed[i] != 0) insert(value, i, k, n, out);
  }
  for (int j = n; j < k; ++j) out[j] = -1;
}

}  // namespace moesim
