// DeepSeek's EPLB (deepseek-ai/EPLB, eplb.py), re-implemented: see the
// tie-breaking notes in moesim/placement.hpp. The reference works on whole
// [layers, n] tensors, but every operation is row-wise, so we do one layer
// (and, in step 2 and 3, one node) at a time.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "moesim/error.hpp"
#include "moesim/placement.hpp"

namespace moesim {

Packing balanced_packing(const std::vector<float>& weight, int num_packs) {
  const int n = int(weight.size());
  if (num_packs < 1 || n % num_packs != 0)
    throw std::invalid_argument("balanced_packing: items must divide evenly into packs");
  const int per_pack = n / num_packs;
  Packing out;
  out.pack_index.assign(std::size_t(n), -1);
  out.rank_in_pack.assign(std::size_t(n), -1);
  if (per_pack == 1) {  // the reference's shortcut: item i alone in pack i
    for (int i = 0; i < n; ++i) out.pack_index[i] = i, out.rank_in_pack[i] = 0;
    return out;
  }
  // weight.sort(descending=True) as torch's CPU kernel does it: std::sort of
  // (value, index) pairs in index order, comparing values only.
  std::vector<std::pair<float, int>> order(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) order[i] = {weight[i], i};
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });

  std::vector<float> pack_weight(std::size_t(num_packs), 0.0f);  // float32 sums, as the reference's tensors
  std::vector<int> pack_items(std::size_t(num_packs), 0);
  for (const auto& [w, item] : order) {
    int best = -1;  // lightest non-full pack; strict < keeps the lowest index
    for (int p = 0; p < num_packs; ++p)
      if (pack_items[p] < per_pack && (best < 0 || pack_weight[p] < pack_weight[best])) best = p;
    out.pack_index[item] = best;
    out.rank_in_pack[item] = pack_items[best];
    pack_weight[best] += w;
    ++pack_items[best];
  }
  return out;
}

Replication replicate_experts(const std::vector<float>& weight, int num_phy) {
  const int num_log = int(weight.size());
  if (num_phy < num_log) throw std::invalid_argument("replicate_experts: fewer replicas than experts");
  Replication r;
  r.phy2log.resize(std::size_t(num_phy));
  r.rank.assign(std::size_t(num_phy), 0);
  r.logcnt.assign(std::size_t(num_log), 1);
  for (int i = 0; i < num_log; ++i) r.phy2log[i] = i;
  for (int i = num_log; i < num_phy; ++i) {
    // argmax of weight/logcnt in float32; strict > keeps the first maximum (torch.max).
    int best = 0;
    float best_load = weight[0] / float(r.logcnt[0]);
    for (int e = 1; e < num_log; ++e) {
      const float load = weight[e] / float(r.logcnt[e]);
      if (load > best_load) best = e, best_load = load;
    }
    r.phy2log[i] = best;
    r.rank[i] = r.logcnt[best];
    ++r.logcnt[best];
  }
  return r;
}

namespace {

std::vector<int> inverse(const std::vector<int>& perm) {
  std::vector<int> inv(perm.size());
  for (int i = 0; i < int(perm.size()); ++i) inv[perm[i]] = i;
  return inv;
}

void require(bool ok, const char* param, const std::string& message) {
  if (!ok) throw ParamError(param, message);
}

struct LayerPlan {
  std::vector<int> phy2log, phyrank, logcnt;
};

// eplb.py rebalance_experts_hierarchical for one layer. "mlog" numbers the
// logical experts node-major after groups are packed to nodes; "phy" numbers
// a node's replicas in creation order, "pphy" in GPU-slot order.
LayerPlan rebalance_layer(const std::vector<float>& w, int num_phy, int groups, int nodes, int gpus) {
  const int E = int(w.size());
  require(E % groups == 0, "num_groups",
          "experts (" + std::to_string(E) + ") must be divisible by num_groups (" + std::to_string(groups) + ")");
  require(groups % nodes == 0, "num_nodes", "num_groups must be divisible by num_nodes");
  require(gpus % nodes == 0, "num_gpus", "num_gpus must be a multiple of num_nodes");
  require(num_phy % gpus == 0, "num_replicas", "num_replicas must be a multiple of num_gpus");
  require(num_phy >= E, "num_replicas", "num_replicas must be at least the number of experts");
  const int group_size = E / groups, groups_per_node = groups / nodes;
  const int log_per_node = E / nodes, phy_per_node = num_phy / nodes, phy_per_gpu = num_phy / gpus;

  // Step 1: pack groups to nodes by their summed load. (Summed in order in
  // float32; torch's .sum may associate differently, which can change the
  // last bit for non-integral loads. Integral loads below 2^24 are exact.)
  std::vector<float> group_load(std::size_t(groups), 0.0f);
  for (int g = 0; g < groups; ++g)
    for (int j = 0; j < group_size; ++j) group_load[g] += w[g * group_size + j];
  const Packing to_nodes = balanced_packing(group_load, nodes);
  std::vector<int> log2mlog(static_cast<std::size_t>(E));
  for (int g = 0; g < groups; ++g)
    for (int j = 0; j < group_size; ++j)
      log2mlog[g * group_size + j] =
          (to_nodes.pack_index[g] * groups_per_node + to_nodes.rank_in_pack[g]) * group_size + j;
  const std::vector<int> mlog2log = inverse(log2mlog);

  LayerPlan plan;
  plan.phy2log.resize(std::size_t(num_phy));
  plan.phyrank.resize(std::size_t(num_phy));
  std::vector<int> mlogcnt(static_cast<std::size_t>(E));
  for (int node = 0; node < nodes; ++node) {
    // Step 2: replicas within the node.
    std::vector<float> mlog_load(static_cast<std::size_t>(log_per_node));
    for (int i = 0; i < log_per_node; ++i) mlog_load[i] = w[mlog2log[node * log_per_node + i]];
    const Replication rep = replicate_experts(mlog_load, phy_per_node);
    for (int i = 0; i < log_per_node; ++i) mlogcnt[node * log_per_node + i] = rep.logcnt[i];

    // Step 3: pack the node's replicas to its GPUs by load per replica.
    std::vector<float> phy_load(static_cast<std::size_t>(phy_per_node));
    for (int k = 0; k < phy_per_node; ++k) {
      const int m = rep.phy2log[k];
      phy_load[k] = mlog_load[m] / float(rep.logcnt[m]);
    }
    const Packing to_gpus = balanced_packing(phy_load, gpus / nodes);
    std::vector<int> phy2pphy(static_cast<std::size_t>(phy_per_node));
    for (int k = 0; k < phy_per_node; ++k) phy2pphy[k] = to_gpus.pack_index[k] * phy_per_gpu + to_gpus.rank_in_pack[k];
    const std::vector<int> pphy2phy = inverse(phy2pphy);
    for (int q = 0; q < phy_per_node; ++q) {
      const int k = pphy2phy[q];
      plan.phy2log[node * phy_per_node + q] = mlog2log[rep.phy2log[k] + node * log_per_node];
      plan.phyrank[node * phy_per_node + q] = rep.rank[k];
    }
  }
  plan.logcnt.resize(std::size_t(E));
  for (int e = 0; e < E; ++e) plan.logcnt[e] = mlogcnt[log2mlog[e]];
  return plan;
}

}  // namespace

EplbResult rebalance_experts(const std::vector<std::vector<double>>& weight, int num_replicas, int num_groups,
                             int num_nodes, int num_gpus) {
  require(num_groups >= 1, "num_groups", "num_groups must be ≥ 1");
  require(num_nodes >= 1, "num_nodes", "num_nodes must be ≥ 1");
  require(num_gpus >= 1, "num_gpus", "num_gpus must be ≥ 1");
  EplbResult out;
  if (weight.empty()) return out;
  const std::size_t E = weight[0].size();
  if (E == 0) throw std::invalid_argument("rebalance_experts: no experts");
  // The reference: hierarchical when nodes divide groups, else global
  // (= hierarchical with one group on one node).
  const bool hierarchical = num_groups % num_nodes == 0;
  std::vector<LayerPlan> plans;
  int max_cnt = 0;
  for (const auto& row : weight) {
    if (row.size() != E) throw std::invalid_argument("rebalance_experts: layers have different expert counts");
    std::vector<float> w(E);
    for (std::size_t e = 0; e < E; ++e) {
      w[e] = float(row[e]);  // weight.float()
      if (!(std::isfinite(w[e]) && w[e] >= 0))
        throw std::invalid_argument("rebalance_experts: loads must be finite float32 values ≥ 0");
    }
    // The packing sums loads in float32: an overflow there gave a degenerate placement.
    float sum = 0.0f;
    for (float x : w) sum += x;
    if (!std::isfinite(sum)) throw std::invalid_argument("rebalance_experts: the loads of a layer overflow float32");
    plans.push_back(hierarchical ? rebalance_layer(w, num_replicas, num_groups, num_nodes, num_gpus)
                                 : rebalance_layer(w, num_replicas, 1, 1, num_gpus));
    max_cnt = std::max(max_cnt, *std::max_element(plans.back().logcnt.begin(), plans.back().logcnt.end()));
  }
  // log2phy[l][e][rank] = slot, padded with −1 to the largest count of any
  // layer (the reference's maxlogcnt is over the whole tensor).
  for (auto& plan : plans) {
    std::vector<std::vector<int>> l2p(E, std::vector<int>(std::size_t(max_cnt), -1));
    for (int slot = 0; slot < num_replicas; ++slot) l2p[plan.phy2log[slot]][plan.phyrank[slot]] = slot;
    out.phy2log.push_back(std::move(plan.phy2log));
    out.logcnt.push_back(std::move(plan.logcnt));
    out.log2phy.push_back(std::move(l2p));
  }
  return out;
}

PlacementMap to_placement(const EplbResult& result, int layer, int num_gpus) {
  PlacementMap m = placement_from_phy2log(result.phy2log.at(layer), int(result.logcnt.at(layer).size()), num_gpus);
  // Keep EPLB's replica rank order (replica_share gives remainders by rank).
  for (int e = 0; e < m.experts(); ++e) {
    const auto& ranks = result.log2phy[layer][e];
    m.log2phy[e].assign(ranks.begin(), ranks.begin() + result.logcnt[layer][e]);
  }
  return m;
}

}  // namespace moesim
