#include "counting.hpp"

#include <algorithm>

#include "moesim/metrics.hpp"

namespace moesim {

void count_loads(StepData& data, const Shape& shape, std::span<const std::uint8_t> protected_seq) {
  const int L = shape.seq_len, k = shape.top_k, E = shape.experts;
  std::fill(data.routed.begin(), data.routed.end(), 0.0);
  std::fill(data.processed.begin(), data.processed.end(), 0.0);
  data.dropped = data.tokens_fully_dropped = data.sequences_with_drops = data.protected_drops = 0;
  // Per-sequence MaxVio needs the sequence's own counts: c̄ per sequence = L·k/E.
  std::vector<double>& seq_counts = data.scratch_counts;
  seq_counts.resize(E);
  const double seq_mean = double(L) * k / E;
  for (int n = 0; n < shape.sequences; ++n) {
    std::fill(seq_counts.begin(), seq_counts.end(), 0.0);
    std::int64_t seq_drops = 0;
    for (int j = 0; j < L; ++j) {
      const std::size_t t = std::size_t(n) * L + j;
      int kept = 0;
      for (int r = 0; r < k; ++r) {
        const std::int32_t e = data.expert[t * k + r];
        data.routed[e] += 1.0;
        seq_counts[e] += 1.0;
        if (data.keep[t * k + r]) {
          data.processed[e] += 1.0;
          ++kept;
        }
      }
      seq_drops += k - kept;
      if (kept == 0) ++data.tokens_fully_dropped;
    }
    data.dropped += seq_drops;
    if (seq_drops > 0) ++data.sequences_with_drops;
    if (!protected_seq.empty() && protected_seq[n]) data.protected_drops += seq_drops;
    data.seq_max_vio[n] = maxvio(seq_counts, seq_mean);
  }
}

}  // namespace moesim
