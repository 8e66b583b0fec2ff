#include "counting.hpp"

#include <algorithm>

#include "moesim/metrics.hpp"

namespace moesim {

void count_loads(StepData& data, const Shape& shape, std::span<const std::uint8_t> protected_seq) {
  const int B = shape.sequences, L = shape.seq_len, k = shape.top_k, E = shape.experts;
  // Each sequence counts into its own rows (its MaxVio needs its own counts,
  // c̄ per sequence = L·k/E), in parallel; the step's totals add the rows.
  // The counts are whole numbers, exact in a double in any order, so the
  // result does not depend on the thread count.
  const std::size_t row = 2 * std::size_t(E) + 1;  // a sequence's routed E, processed E, drops
  std::vector<double>& counts = data.scratch_counts;
  counts.resize(row * B);
  const double seq_mean = double(L) * k / E;
  std::int64_t fully_dropped = 0;
#pragma omp parallel for schedule(static) reduction(+ : fully_dropped)
  for (int n = 0; n < B; ++n) {
    double* routed = &counts[row * n];
    double* processed = routed + E;
    std::fill_n(routed, row, 0.0);
    std::int64_t seq_drops = 0;
    for (std::size_t t = std::size_t(n) * L; t < std::size_t(n + 1) * L; ++t) {
      int kept = 0;
      for (int r = 0; r < k; ++r) {
        const std::int32_t e = data.expert[t * k + r];
        routed[e] += 1.0;
        const bool keep = data.keep[t * k + r] != 0;
        processed[e] += keep;
        kept += keep;
      }
      seq_drops += k - kept;
      fully_dropped += kept == 0;
    }
    processed[E] = double(seq_drops);
    data.seq_max_vio[n] = maxvio({routed, std::size_t(E)}, seq_mean);
  }
  std::fill(data.routed.begin(), data.routed.end(), 0.0);
  std::fill(data.processed.begin(), data.processed.end(), 0.0);
  data.dropped = data.sequences_with_drops = data.protected_drops = 0;
  data.tokens_fully_dropped = fully_dropped;
  for (int n = 0; n < B; ++n) {
    const double* routed = &counts[row * n];
    const double* processed = routed + E;
    const auto seq_drops = std::int64_t(processed[E]);
    for (int e = 0; e < E; ++e) data.routed[e] += routed[e];
    for (int e = 0; e < E; ++e) data.processed[e] += processed[e];
    data.dropped += seq_drops;
    if (seq_drops > 0) ++data.sequences_with_drops;
    if (!protected_seq.empty() && protected_seq[n]) data.protected_drops += seq_drops;
  }
}

}  // namespace moesim
