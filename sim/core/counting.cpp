#include "counting.hpp"

#include <omp.h>

#include <algorithm>

#include "moesim/metrics.hpp"

namespace moesim {

void count_loads(StepData& data, const Shape& shape, std::span<const std::uint8_t> protected_seq) {
  const int B = shape.sequences, L = shape.seq_len, k = shape.top_k, E = shape.experts;
  // Sequences in parallel, each thread counting into its own rows: routed
  // and processed per expert, and the current sequence's counts for its
  // MaxVio (c̄ per sequence = L·k/E). The counts are whole numbers, exact in
  // a double in any order, so the totals do not depend on the thread count.
  const int threads = omp_get_max_threads();
  const std::size_t row = 3 * std::size_t(E);  // a thread's routed E, processed E, sequence E
  std::vector<double>& counts = data.scratch_counts;
  counts.assign(row * threads, 0.0);
  const double seq_mean = double(L) * k / E;
  std::int64_t dropped = 0, fully_dropped = 0, with_drops = 0, protected_drops = 0;
#pragma omp parallel for schedule(static) reduction(+ : dropped, fully_dropped, with_drops, protected_drops)
  for (int n = 0; n < B; ++n) {
    double* routed = &counts[row * omp_get_thread_num()];
    double* processed = routed + E;
    double* seq = processed + E;
    std::fill_n(seq, E, 0.0);
    std::int64_t seq_drops = 0;
    for (std::size_t t = std::size_t(n) * L; t < std::size_t(n + 1) * L; ++t) {
      int kept = 0;
      for (int r = 0; r < k; ++r) {
        const std::int32_t e = data.expert[t * k + r];
        const bool keep = data.keep[t * k + r] != 0;
        routed[e] += 1.0;
        seq[e] += 1.0;
        processed[e] += keep;
        kept += keep;
      }
      seq_drops += k - kept;
      fully_dropped += kept == 0;
    }
    dropped += seq_drops;
    with_drops += seq_drops > 0;
    if (!protected_seq.empty() && protected_seq[n]) protected_drops += seq_drops;
    data.seq_max_vio[n] = maxvio({seq, std::size_t(E)}, seq_mean);
  }
  std::fill(data.routed.begin(), data.routed.end(), 0.0);
  std::fill(data.processed.begin(), data.processed.end(), 0.0);
  for (int i = 0; i < threads; ++i) {
    const double* routed = &counts[row * i];
    for (int e = 0; e < E; ++e) data.routed[e] += routed[e];
    for (int e = 0; e < E; ++e) data.processed[e] += routed[E + e];
  }
  data.dropped = dropped;
  data.tokens_fully_dropped = fully_dropped;
  data.sequences_with_drops = with_drops;
  data.protected_drops = protected_drops;
}

}  // namespace moesim
