// Top-k selection in rank order (MODEL.md §2: "top-k of s + b ... Ties: lower
// expert index wins. Never the same expert twice for one token").
//
// The unrestricted case is the hot path of every step (T tokens × E experts),
// so it avoids data-dependent branches, which cost more than the arithmetic:
// a lower bound on the k-th largest value prunes E values to about k
// candidates, and each candidate's rank is counted rather than sorted.
#include <algorithm>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "moesim/routing_rules.hpp"

namespace moesim {

namespace {

constexpr int kLanes = 16;       // one AVX-512 register of floats
constexpr int kMaxWidth = 1024;  // widest E taken by the candidate path (its stack buffers)
constexpr int kMaxRanked = 32;   // candidates ranked by counting; more (heavy ties) are inserted
constexpr float kInf = std::numeric_limits<float>::infinity();

// out[0..n) stays sorted by (value desc, index asc). Visiting indices in
// increasing order and moving an entry only past strictly smaller values
// makes an equal value never overtake an earlier (lower) index.
inline void insert(const float* value, int i, int k, int& n, std::int32_t* out) {
  const float v = value[i];
  int pos;
  if (n < k) {
    pos = n++;
  } else {
    if (!(v > value[out[k - 1]])) return;
    pos = k - 1;  // evict the current last
  }
  while (pos > 0 && value[out[pos - 1]] < v) {
    out[pos] = out[pos - 1];
    --pos;
  }
  out[pos] = i;
}

// A lower bound on the k-th largest value (k ≤ 16 ≤ E): the k-th largest of
// the lane maxima, lane j holding the values j, j+16, j+32, ... The lanes
// partition the values, so k lanes each hold a value at least that large.
// Lanes rather than contiguous chunks: their maxima are one vector max per 16
// values, with no horizontal reduction. The k-th largest maximum is found by
// counting, for each, the maxima strictly greater (fixed-width loops that
// vectorise): those with fewer than k are exactly the ones ≥ the k-th largest.
float kth_lane_max(const float* value, int E, int k) {
  alignas(64) float maxima[kLanes];
  const int full = E / kLanes * kLanes;
#if defined(__AVX512F__)
  // Written out: GCC keeps the loop below scalar, 16 maxss per 16 values.
  // vmaxps(a, b) is a > b ? a : b, the loop's expression (in its zero-masked
  // form: GCC 12 warns about the plain one's undefined pass-through).
  __m512 m = _mm512_loadu_ps(value);
  for (int c = kLanes; c < full; c += kLanes) m = _mm512_maskz_max_ps(0xffff, _mm512_loadu_ps(value + c), m);
  _mm512_store_ps(maxima, m);
#else
  std::copy_n(value, kLanes, maxima);
  for (int c = kLanes; c < full; c += kLanes)
    for (int j = 0; j < kLanes; ++j) maxima[j] = value[c + j] > maxima[j] ? value[c + j] : maxima[j];
#endif
  for (int i = full; i < E; ++i) maxima[i - full] = std::max(maxima[i - full], value[i]);
#if defined(__AVX512F__)
  // Written out too: GCC makes horizontal sums and 16 data-dependent branches
  // of the loops below. Counts in one register, then the smallest maximum
  // among those with fewer than k greater (the others set to +inf).
  const __m512 lanes = _mm512_load_ps(maxima);  // with the tail's values
  __m512i greater = _mm512_setzero_si512();
  for (int j = 0; j < kLanes; ++j) {
    const __mmask16 gt = _mm512_cmp_ps_mask(_mm512_set1_ps(maxima[j]), lanes, _CMP_GT_OQ);
    greater = _mm512_mask_add_epi32(greater, gt, greater, _mm512_set1_epi32(1));
  }
  const __mmask16 top = _mm512_cmplt_epi32_mask(greater, _mm512_set1_epi32(k));
  alignas(64) float candidates[kLanes];
  _mm512_store_ps(candidates, _mm512_mask_blend_ps(top, _mm512_set1_ps(kInf), lanes));
  float bound = kInf;
  for (int i = 0; i < kLanes; ++i) bound = std::min(bound, candidates[i]);
  return bound;
#else
  int greater[kLanes] = {};
  for (int j = 0; j < kLanes; ++j)
    for (int i = 0; i < kLanes; ++i) greater[i] += maxima[j] > maxima[i];
  float bound = kInf;
  for (int i = 0; i < kLanes; ++i) bound = greater[i] < k && maxima[i] < bound ? maxima[i] : bound;
  return bound;
#endif
}

// Values ≥ bound and their indices, in index order; returns how many.
int collect(const float* value, int E, float bound, float* cv, std::int32_t* ci) {
  int n = 0, i = 0;
#if defined(__AVX512F__)
  const __m512 b = _mm512_set1_ps(bound);
  __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; i + kLanes <= E; i += kLanes, index = _mm512_add_epi32(index, _mm512_set1_epi32(kLanes))) {
    const __m512 v = _mm512_loadu_ps(value + i);
    const __mmask16 m = _mm512_cmp_ps_mask(v, b, _CMP_GE_OQ);
    // Compress in registers, then a full-width store (n + 16 ≤ E here).
    _mm512_storeu_ps(cv + n, _mm512_maskz_compress_ps(m, v));
    _mm512_storeu_si512(ci + n, _mm512_maskz_compress_epi32(m, index));
    n += __builtin_popcount(m);
  }
#endif
  for (; i < E; ++i) {
    cv[n] = value[i];
    ci[n] = i;
    n += value[i] >= bound;
  }
  return n;
}

// Places each of n ≤ kMaxRanked candidates (in index order, cv padded to
// kMaxRanked with −inf) at its rank when that rank is below k: the number of
// candidates with a greater value, or an equal one at a lower index.
[[gnu::always_inline]] inline void rank_candidates(const float* cv, const std::int32_t* ci, int n, int k, std::int32_t* out) {
  int rank[kMaxRanked] = {};
  for (int j = 0; j < n; ++j)  // vectorised over c: no horizontal sums
    for (int c = 0; c < kMaxRanked; ++c) rank[c] += (cv[j] > cv[c]) | ((cv[j] == cv[c]) & (j < c));
  for (int c = 0; c < n; ++c)
    if (rank[c] < k) out[rank[c]] = ci[c];
}

}  // namespace

void select_topk(const float* value, const std::uint8_t* allowed, int E, int k, std::int32_t* out) {
  if (k <= 0) return;
  if (allowed == nullptr && k <= kLanes && E >= kLanes && E <= kMaxWidth) {
    alignas(64) float cv[kMaxWidth];
    alignas(64) std::int32_t ci[kMaxWidth];
    const int n = collect(value, E, kth_lane_max(value, E, k), cv, ci);  // n ≥ k by the bound
    if (n <= kMaxRanked) {
      std::fill(cv + n, cv + kMaxRanked, -kInf);
      rank_candidates(cv, ci, n, k, out);
    } else {
      int filled = 0;
      for (int c = 0; c < n; ++c) insert(value, ci[c], k, filled, out);
    }
    return;
  }
  if (allowed == nullptr && k <= E && E < kLanes) {
    // A few values (a token's groups or devices in limited routing): every
    // one is a candidate, ranked by counting rather than by branches.
    alignas(64) float cv[kMaxRanked];
    alignas(64) std::int32_t ci[kMaxRanked];
    std::copy_n(value, E, cv);
    std::fill(cv + E, cv + kMaxRanked, -kInf);
    for (int i = 0; i < E; ++i) ci[i] = i;
    rank_candidates(cv, ci, E, k, out);
    return;
  }
  int n = 0;
  for (int i = 0; i < E; ++i)
    if (allowed == nullptr || allowed[i] != 0) insert(value, i, k, n, out);
  for (int j = n; j < k; ++j) out[j] = -1;
}

}  // namespace moesim
