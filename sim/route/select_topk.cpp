// Top-k selection in rank order (MODEL.md §2: "top-k of s + b ... Ties: lower
// expert index wins. Never the same expert twice for one token").
#include "moesim/routing_rules.hpp"

namespace moesim {

void select_topk(const float* value, const std::uint8_t* allowed, int E, int k,
                 std::int32_t* out) {
  // out[0..n) stays sorted by (value desc, index asc). Scanning indices in
  // increasing order and moving an entry only past strictly smaller values
  // makes an equal value never overtake an earlier (lower) index.
  int n = 0;
  for (int i = 0; i < E; ++i) {
    if (allowed != nullptr && allowed[i] == 0) continue;
    const float v = value[i];
    int pos;
    if (n < k) {
      pos = n++;
    } else {
      if (k == 0 || !(v > value[out[k - 1]])) continue;
      pos = k - 1;  // evict the current last
    }
    while (pos > 0 && value[out[pos - 1]] < v) {
      out[pos] = out[pos - 1];
      --pos;
    }
    out[pos] = i;
  }
  for (int j = n; j < k; ++j) out[j] = -1;
}

}  // namespace moesim
