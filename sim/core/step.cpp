#include "moesim/step.hpp"

#include <sys/mman.h>

#include <cstdint>

namespace moesim {

namespace {

// The large buffers (x, and z and s when all their rows are kept: 16 MB each
// for a V3-shaped step) would take thousands of 4 KiB page faults on first
// touch, which cost more than the first steps themselves on a VM; where the
// kernel offers transparent huge pages on request (madvise mode, the Debian
// default) they take a few dozen.
template <class T>
void assign_large(std::vector<T>& v, std::size_t n) {
  std::vector<T>().swap(v);
  v.reserve(n);  // allocated, not yet touched
#if defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kPage = 4096;
  const auto begin = (reinterpret_cast<std::uintptr_t>(v.data()) + kPage - 1) & ~(kPage - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(v.data() + n)) & ~(kPage - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // advice only
#endif
  v.resize(n);
}

}  // namespace

void StepData::resize(const Shape& shape, int rows) {
  const std::size_t T = shape.tokens(), E = shape.experts, k = shape.top_k;
  assign_large(x, T * shape.hidden);
  domain.assign(T, -1);
  score_rows = rows < 0 ? int(T) : rows;
  assign_large(z, std::size_t(score_rows) * E);
  assign_large(s, std::size_t(score_rows) * E);
  allowed.clear();  // sized by the router when a constraint restricts
  expert.resize(T * k);
  gate.resize(T * k);
  affinity.resize(T * k);
  keep.assign(T * k, 1);
  routed.assign(E, 0.0);
  expert_device.resize(E);
  // Contiguous until the simulation copies in the placement (e·D/E: also
  // defined when experts do not divide the devices).
  for (std::size_t e = 0; e < E; ++e) expert_device[e] = int(e * std::size_t(shape.devices()) / E);
  processed.assign(E, 0.0);
  device_load.assign(shape.devices(), 0.0);
  device_dropped.assign(shape.devices(), 0.0);
  seq_max_vio.assign(shape.sequences, 0.0);
}

}  // namespace moesim
