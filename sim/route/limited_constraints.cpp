// Restricted routing (MODEL.md §2): DeepSeek-V2 device-limited routing
// (arXiv 2405.04434 §2.2.2) and DeepSeek-V3 node/group-limited routing
// (arXiv 2412.19437 §2.1.2).
#include <fmt/format.h>

#include <stdexcept>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "moesim/components.hpp"
#include "moesim/error.hpp"
#include "moesim/routing_rules.hpp"

namespace moesim {
namespace {

// Per-thread scratch: allow() is called concurrently from the router.
LimitedRoutingScratch& scratch() {
  thread_local LimitedRoutingScratch s;
  return s;
}

class DeviceLimited final : public RoutingConstraint {
 public:
  DeviceLimited(const Params& p, const Shape& s)
      : devices_(s.devices()), m_(int(p.integer("m"))), k_(s.top_k) {
    if (m_ > devices_) throw ParamError("m", fmt::format("expected at most the {} devices, got {}", devices_, m_));
    const int per_device = (s.experts + devices_ - 1) / devices_;  // ceil: experts need not divide devices
    if (std::int64_t(m_) * per_device < s.top_k)
      throw ParamError("m", fmt::format("m devices × {} experts per device must be at least top_k = {}, got m = {}",
                                        per_device, s.top_k, m_));
  }
  void allow(std::span<const float> s, std::span<const float>, std::span<const std::int32_t> device_of_expert,
             std::span<std::uint8_t> allowed) const override {
    device_limited_allowed(s, device_of_expert, devices_, m_, k_, scratch(), allowed);
  }

 private:
  int devices_, m_, k_;
};

class NodeLimited final : public RoutingConstraint {
 public:
  NodeLimited(const Params& p, const Shape& s)
      : groups_(p.has("groups") ? int(p.integer("groups")) : s.nodes),
        m_(int(p.integer("m"))),
        k_(s.top_k),
        devices_(s.devices()),
        devices_per_node_(s.devices_per_node),
        on_nodes_(groups_ == s.nodes) {
    if (!on_nodes_ && s.experts % groups_ != 0)
      throw ParamError("groups", fmt::format("must divide the {} experts, got {}", s.experts, groups_));
    if (m_ > groups_) throw ParamError("m", fmt::format("expected at most the {} groups, got {}", groups_, m_));
    if (std::int64_t(m_) * (s.experts / groups_) < s.top_k)
      throw ParamError("m", fmt::format("m groups × {} experts per group must be at least top_k = {}, got m = {}",
                                        s.experts / groups_, s.top_k, m_));
  }
  // Groups that are the cluster's nodes follow the placement: an expert
  // counts on the node of the replica that serves the token (V3 limits the
  // nodes a token is sent to). Other groupings are contiguous expert ids.
  void allow(std::span<const float>, std::span<const float> biased, std::span<const std::int32_t> device_of_expert,
             std::span<std::uint8_t> allowed) const override {
    if (!on_nodes_) return group_limited_allowed(biased, groups_, m_, k_, scratch(), allowed);
    thread_local std::vector<std::int32_t> node;
    node.resize(device_of_expert.size());
    nodes_of(device_of_expert, node);
    group_limited_allowed(biased, node, groups_, m_, k_, scratch(), allowed);
  }
  bool reads_devices() const override { return on_nodes_; }

 private:
  // node[i] = device[i] / G, G devices a node. An integer division per expert
  // and token was a tenth of a node-limited 58-layer step, so where AVX-512
  // runs, 16 at a time as floor((d + 0.5) · (1/G)) in double. That is exact:
  // (d + 0.5)/G lies at least 0.5/G from an integer, and the two roundings
  // move it by at most (d/G + 1)·2⁻⁵², less than that while d + G < 2⁵¹.
  // A device out of range is the caller's bug.
  void nodes_of(std::span<const std::int32_t> device, std::vector<std::int32_t>& node) const {
    const int n = int(device.size());
    int i = 0;
#if defined(__AVX512F__)
    const __m512i devices = _mm512_set1_epi32(devices_);
    const __m512d half = _mm512_set1_pd(0.5), inverse = _mm512_set1_pd(1.0 / devices_per_node_);
    // The zero-masked forms: GCC 12 warns about the plain ones' undefined pass-through.
    const auto nodes8 = [&](__m256i d) {
      const __m512d x = _mm512_maskz_add_pd(0xff, _mm512_maskz_cvtepi32_pd(0xff, d), half);
      return _mm512_maskz_cvttpd_epi32(0xff, _mm512_maskz_mul_pd(0xff, x, inverse));
    };
    for (; i + 16 <= n; i += 16) {
      const __m512i d = _mm512_loadu_si512(device.data() + i);
      if (_mm512_cmpge_epu32_mask(d, devices) != 0) break;  // the scalar loop throws
      for (int half8 : {0, 8}) {  // in halves of 8, as a double vector holds 8
        const __m256i d8 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(device.data() + i + half8));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(node.data() + i + half8), nodes8(d8));
      }
    }
#endif
    for (; i < n; ++i) {
      const std::int32_t d = device[std::size_t(i)];
      if (d < 0 || d >= devices_) throw std::logic_error("node_limited: a device id out of range");
      node[std::size_t(i)] = d / devices_per_node_;
    }
  }

  int groups_, m_, k_, devices_, devices_per_node_;
  bool on_nodes_;
};

const Registration<RoutingConstraint> device_registration{{
    "device_limited",
    "DeepSeek-V2: keep the m devices with the highest max score, then top-k among their experts",
    {ParamSpec::required_integer("m", 1, 65536, "devices kept per token")},
    make<RoutingConstraint, DeviceLimited>,
}};
const Registration<RoutingConstraint> node_registration{{
    "node_limited",
    "DeepSeek-V3: keep the m groups (default: the nodes, where the placement puts the experts) with the highest "
    "sum of their top ceil(k/m) values of s+b",
    {
        ParamSpec::required_integer("m", 1, 65536, "groups kept per token"),
        ParamSpec::required_integer("groups", 1, 65536, "contiguous expert groups").derived_from("cluster.nodes"),
    },
    make<RoutingConstraint, NodeLimited>,
}};

}  // namespace
}  // namespace moesim
