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
      {"rank_imbalance", "max/mean − 1 of per-device load, averaged over steps (serving reports' figure)", true},
      {"comm_bytes_intra", "all-to-all bytes inside nodes over the run", true},
      {"comm_bytes_inter", "all-to-all bytes between nodes over the run", true},
      // Serving results (mode: serve, MODEL.md §10); rank_imbalance above is per iteration there.
      {"ttft_mean", "time to first token (s): mean over requests", true},
      {"ttft_p50", "time to first token (s): median over requests", true},
      {"ttft_p90", "time to first token (s): 90th percentile over requests", true},
      {"ttft_p99", "time to first token (s): 99th percentile over requests", true},
      {"tpot_mean", "time per output token after the first (s): mean over requests", true},
      {"tpot_p50", "time per output token after the first (s): median over requests", true},
      {"tpot_p90", "time per output token after the first (s): 90th percentile over requests", true},
      {"tpot_p99", "time per output token after the first (s): 99th percentile over requests", true},
      {"e2e_mean", "request latency, arrival to last token (s): mean over requests", true},
      {"e2e_p50", "request latency, arrival to last token (s): median over requests", true},
      {"e2e_p90", "request latency, arrival to last token (s): 90th percentile over requests", true},
      {"e2e_p99", "request latency, arrival to last token (s): 99th percentile over requests", true},
      {"throughput", "output tokens per second", false},
      {"goodput", "requests per second meeting the slo TTFT and TPOT targets", false},
      {"requests_completed", "requests that received their last token", false},
      {"duration", "seconds from the first request's arrival to the last completion", true},
      {"iterations", "engine iterations (continuous batching) run", true},
      {"iteration_time_mean", "mean iteration time (s)", true},
      {"queue_mean", "waiting requests, mean over iterations", true},
      {"migrations", "expert slots moved by online EPLB", true},
      {"migration_time", "seconds the iterations were extended by weight migration", true},
  };
  return catalog;
}

const MetricInfo* find_metric(const std::string& name) {
  for (const auto& m : metric_catalog())
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace moesim
