// The summary metrics of a result file (MODEL.md §7), with one line each for
// `moesim list`, `moesim compare` (which way is better) and the README.
#include "moesim/metrics.hpp"

namespace moesim {

const std::vector<MetricInfo>& metric_catalog() {
  static const std::vector<MetricInfo> catalog{
      {"tokens", "tokens routed over the run (steps × sequences × seq_len)", false},
      {"maxvio_batch", "(max expert load − mean)/mean per step, averaged over steps", true},
      {"maxvio_seq", "MaxVio within each sequence (mean L·k/E), averaged over sequences and steps", true},
      {"maxvio_global", "MaxVio of the expert loads accumulated over the whole run", true},
      {"cv", "coefficient of variation of expert loads over the window", true},
      {"entropy_norm", "entropy of the expert-load distribution over the window / ln E (1 = uniform)", false},
      {"max_over_mean", "largest expert load / mean over the window (at most E/k)", true},
      {"dead_experts", "experts that processed < 1% of the mean load over the window", true},
      {"top10_share", "share of the window's load carried by the top 10% of experts", true},
      {"drop_rate", "dropped assignments / routed assignments", true},
      {"token_drop_rate", "tokens whose every routed expert was dropped / tokens", true},
      {"sequences_without_drops", "fraction of sequences with no dropped assignment", false},
      {"quality_loss", "task-loss proxy (MODEL.md §3) averaged over the window; lower is better", true},
      {"protected_drops", "dropped assignments of protected sequences (always 0)", true},
      {"step_time_mean", "mean simulated step time in seconds", true},
      {"idle_fraction", "1 − mean(device busy)/max(device busy), averaged over steps", true},
      {"rank_imbalance", "max/mean − 1 of per-device load, averaged over steps (serving: over iterations; serving reports' figure)", true},
      {"comm_bytes_intra", "all-to-all bytes inside nodes over the run", true},
      {"comm_bytes_inter", "all-to-all bytes between nodes over the run", true},
      // Serving (mode serve, MODEL.md §10); percentiles interpolate between closest ranks.
      {"ttft_mean", "time to first token (s), mean over requests", true},
      {"ttft_p50", "time to first token (s), median", true},
      {"ttft_p90", "time to first token (s), 90th percentile", true},
      {"ttft_p99", "time to first token (s), 99th percentile", true},
      {"tpot_mean", "time per output token after the first (s), mean over requests with > 1 output token", true},
      {"tpot_p50", "time per output token after the first (s), median", true},
      {"tpot_p90", "time per output token after the first (s), 90th percentile", true},
      {"tpot_p99", "time per output token after the first (s), 99th percentile", true},
      {"e2e_mean", "request latency, arrival to last token (s), mean", true},
      {"e2e_p50", "request latency, arrival to last token (s), median", true},
      {"e2e_p90", "request latency, arrival to last token (s), 90th percentile", true},
      {"e2e_p99", "request latency, arrival to last token (s), 99th percentile", true},
      {"throughput", "output tokens per second over the run (0 to the last completion)", false},
      {"goodput", "requests per second meeting both serve.slo targets (TTFT and TPOT)", false},
      {"requests_completed", "requests served to their last token", false},
      {"duration", "seconds from the run's start to the last completion", true},
      {"iterations", "continuous-batching iterations run (all instances)", true},
      {"iteration_time_mean", "mean iteration time (s), migration delays included", true},
      {"queue_mean", "waiting requests after each iteration's admission, mean over iterations", true},
      {"migrations", "expert slots whose weights online EPLB moved", true},
      {"migration_time", "seconds iterations waited for (or were slowed by) weight migration", true},
  };
  return catalog;
}

const MetricInfo* find_metric(const std::string& name) {
  for (const auto& m : metric_catalog())
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace moesim
