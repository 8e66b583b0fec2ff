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
  };
  return catalog;
}

const MetricInfo* find_metric(const std::string& name) {
  for (const auto& m : metric_catalog())
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace moesim
