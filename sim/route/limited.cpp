// Device-limited (DeepSeek-V2) and group/node-limited (DeepSeek-V3) routing
// masks (MODEL.md §2).
//
// Comparison with DeepSeek-V3's reference inference code (deepseek-ai/
// DeepSeek-V3, inference/model.py, class Gate): with a bias it scores a group
// by scores.topk(2).sum() of s+b — a fixed 2, which equals ceil(k/M) =
// ceil(8/4) for V3's 8 routed experts per token and n_limited_groups = 4 — and
// without a bias by the group maximum (V2-style). moesim always uses
// ceil(k/M), the paper's K_r/M, so other (k, M) follow the paper's rule.
// The Gate then excludes other groups' experts by masking their scores
// (to 0 in early versions, -inf later); moesim passes an allowed mask to
// select_topk instead, so an excluded expert can never be chosen, even when
// s+b is negative. torch.topk's tie order is unspecified; moesim breaks
// ties by the lower group/device index.
#include <algorithm>
#include <limits>
#include <numeric>
#include <stdexcept>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "moesim/routing_rules.hpp"

namespace moesim {

int group_top_values(int k, int M) { return (k + M - 1) / M; }

namespace {

// The sum of the n ≤ size largest of v[0..size), largest first, in float as
// torch's topk(...).sum() on float32. The n largest are kept in descending
// order by a branch-free insertion of each value (the general top-k's
// branches mispredicted on every other value of these 8-expert groups); they
// are the values of select_topk's ranking, in its order (tied values are equal).
//
// A count N known at compile time (n ≤ 4, which covers V3's ceil(8/4) = 2)
// keeps the values in registers: through memory, each value waited on the
// store of the one before, and that was a third of a 58-layer V3 step
// (BM_Simulate58Layers). N = 0 takes any n, kept in scratch[0..n). The same
// operations either way, so the same sum.
template <int N>
float top_sum_n(const float* v, int size, int n, float* scratch) {
  float in_registers[N > 0 ? N : 1];
  float* t = N > 0 ? in_registers : scratch;
  const int count = N > 0 ? N : n;
  std::fill_n(t, count, -std::numeric_limits<float>::infinity());
  for (int i = 0; i < size; ++i) {
    float x = v[i];
    for (int j = 0; j < count; ++j) {
      const float high = std::max(t[j], x);
      x = std::min(t[j], x);
      t[j] = high;
    }
  }
  float sum = 0.0f;
  for (int j = 0; j < count; ++j) sum += t[j];
  return sum;
}

#if defined(__AVX512F__)
// The zero-masked forms: GCC 12 warns about the plain ones' undefined pass-through.
__m512 vmax(__m512 a, __m512 b) { return _mm512_maskz_max_ps(0xffff, a, b); }
__m512 vmin(__m512 a, __m512 b) { return _mm512_maskz_min_ps(0xffff, a, b); }

// The lanes of a vector with `left` > 0 values still to read: the last may be short.
__mmask16 lanes_left(int left) { return __mmask16(left >= 16 ? 0xffff : (1u << left) - 1); }

// 16 lanes' top two values (t0 ≥ t1 in each lane) merged into lane 0: lanes
// merge pairwise, as the top two of a0 ≥ a1 and b0 ≥ b1 are max(a0, b0) and
// max(min(a0, b0), max(a1, b1)). max and min are exact.
void merge_top2_lanes(__m512& t0, __m512& t1) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int shift = 8; shift > 0; shift /= 2) {
    const __m512i other = _mm512_xor_si512(lane, _mm512_set1_epi32(shift));
    const __m512 u0 = _mm512_maskz_permutexvar_ps(0xffff, other, t0);
    const __m512 u1 = _mm512_maskz_permutexvar_ps(0xffff, other, t1);
    t1 = vmax(vmin(t0, u0), vmax(t1, u1));
    t0 = vmax(t0, u0);
  }
}

// n = 2 over a multiple of 16 values (V3's groups of 32), 16 lanes at a
// time: each lane keeps its top two by the same insertion, then the lanes
// merge (merge_top2_lanes). So these are the scalar insertion's two values,
// but for the sign of a zero, which 0 + a + b does not keep (finite values:
// logits are checked finite when read, and a diverging router stops the run). About 3× the register path on V3's groups
// (the group limit's share of BM_Simulate58Layers fell from 14% to 4%).
float top2_sum_vector(const float* v, int size) {
  __m512 t0 = _mm512_loadu_ps(v), t1 = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int c = 16; c < size; c += 16) {
    const __m512 x = _mm512_loadu_ps(v + c);
    t1 = vmax(t1, vmin(t0, x));
    t0 = vmax(t0, x);
  }
  merge_top2_lanes(t0, t1);
  float sum = 0.0f;
  sum += _mm512_cvtss_f32(t0);
  sum += _mm512_cvtss_f32(t1);
  return sum;
}
#endif

float top_sum(const float* v, int size, int n, float* scratch) {
#if defined(__AVX512F__)
  if (n == 2 && size >= 16 && size % 16 == 0) return top2_sum_vector(v, size);
#endif
  switch (n) {
    case 1: return top_sum_n<1>(v, size, n, scratch);
    case 2: return top_sum_n<2>(v, size, n, scratch);
    case 3: return top_sum_n<3>(v, size, n, scratch);
    case 4: return top_sum_n<4>(v, size, n, scratch);
    default: return top_sum_n<0>(v, size, n, scratch);
  }
}

// Groups of any shape (the nodes under a placement, or devices): each
// group's score, the sum of its top n values largest first (-inf for a
// group without experts), and its number of experts, into scratch.score and
// scratch.count. Each group's top n are kept in descending order by
// insertion, as top_sum_n does.
void group_scores_scalar(std::span<const float> biased, std::span<const std::int32_t> group_of_expert, int groups,
                         int n, LimitedRoutingScratch& scratch) {
  constexpr float kNone = -std::numeric_limits<float>::infinity();
  scratch.values.assign(std::size_t(groups) * n, kNone);
  std::fill(scratch.count.begin(), scratch.count.end(), 0);
  for (std::size_t i = 0; i < biased.size(); ++i) {
    const std::int32_t g = group_of_expert[i];
    if (g < 0 || g >= groups) continue;  // counted nowhere: the caller throws
    ++scratch.count[g];
    float* top = &scratch.values[std::size_t(g) * n];
    float v = biased[i];
    for (int j = 0; j < n; ++j)
      if (v > top[j] || top[j] == kNone) std::swap(v, top[j]);
  }
  for (int g = 0; g < groups; ++g) {
    // Summed in float, largest first, as the contiguous version.
    const float* top = &scratch.values[std::size_t(g) * n];
    float sum = top[0];
    for (int j = 1; j < n && top[j] != kNone; ++j) sum += top[j];
    scratch.score[g] = sum;
  }
}

// group_scores_scalar for n ≤ 2 and at most kMaxVectorGroups groups, 16
// experts a vector: each group in turn masks its experts out of every
// vector, whose lanes keep their top two (as top2_sum_vector's, then
// merge_top2_lanes), and counts them. The same two values, so the same sum (a
// zero's sign aside, which no comparison sees). The scalar insertion waited
// on memory for every expert: with V3's node-limited routing on 4 nodes it
// was a third of a 58-layer step. False where it does not apply.
constexpr int kMaxVectorGroups = 64;  // the work grows as groups × experts
bool group_scores_vector(std::span<const float> biased, std::span<const std::int32_t> group_of_expert, int groups,
                         int n, LimitedRoutingScratch& scratch) {
#if defined(__AVX512F__)
  if (n > 2 || groups > kMaxVectorGroups) return false;
  constexpr float kNone = -std::numeric_limits<float>::infinity();
  const int E = int(biased.size());
  const __m512 none = _mm512_set1_ps(kNone);
  for (int g = 0; g < groups; ++g) {
    const __m512i id = _mm512_set1_epi32(g);
    __m512 t0 = none, t1 = none;
    int members = 0;
    for (int c = 0; c < E; c += 16) {
      const __mmask16 valid = lanes_left(E - c);
      const __m512i ids = _mm512_maskz_loadu_epi32(valid, group_of_expert.data() + c);
      const __mmask16 mine = _mm512_mask_cmpeq_epi32_mask(valid, ids, id);
      const __m512 x = _mm512_maskz_loadu_ps(valid, biased.data() + c);
      members += __builtin_popcount(mine);
      t1 = _mm512_mask_max_ps(t1, mine, t1, vmin(t0, x));
      t0 = _mm512_mask_max_ps(t0, mine, t0, x);
    }
    merge_top2_lanes(t0, t1);
    float sum = _mm512_cvtss_f32(t0);
    const float second = _mm512_cvtss_f32(t1);
    if (n == 2 && second != kNone) sum += second;
    scratch.score[g] = sum;
    scratch.count[g] = members;
  }
  return true;
#else
  (void)biased, (void)group_of_expert, (void)groups, (void)n, (void)scratch;
  return false;
#endif
}

// allowed[i] = kept[group_of_expert[i]] != 0 for at most 16 groups (ids
// valid), 16 experts a vector, the flags looked up by a lane permute (the
// scalar loop was among the group limit's hottest lines).
bool allow_groups_vector(std::span<const std::int32_t> group_of_expert, int groups, const std::int32_t* kept,
                         std::span<std::uint8_t> allowed) {
#if defined(__AVX512F__)
  if (groups > 16) return false;
  const auto all = __mmask16((1u << groups) - 1);
  const __m512i flags = _mm512_maskz_loadu_epi32(all, kept);  // 0 or 1
  const int E = int(group_of_expert.size());
  for (int c = 0; c < E; c += 16) {
    const __mmask16 valid = lanes_left(E - c);
    const __m512i ids = _mm512_maskz_loadu_epi32(valid, group_of_expert.data() + c);
    _mm512_mask_cvtepi32_storeu_epi8(allowed.data() + c, valid, _mm512_maskz_permutexvar_epi32(0xffff, ids, flags));
  }
  return true;
#else
  (void)group_of_expert, (void)groups, (void)kept, (void)allowed;
  return false;
#endif
}

// Scores and counts the groups (scratch.score, scratch.count), the top n
// values of each summed: 16 experts a vector where it applies, else one at a
// time. False if some id is out of [0, groups): such an expert is counted in
// no group, so the counts fall short of the experts.
bool score_groups(std::span<const float> values, std::span<const std::int32_t> group_of_expert, int groups, int n,
                  LimitedRoutingScratch& scratch) {
  scratch.score.resize(std::size_t(groups));
  scratch.count.resize(std::size_t(groups));
  if (!group_scores_vector(values, group_of_expert, groups, n, scratch))
    group_scores_scalar(values, group_of_expert, groups, n, scratch);
  return std::accumulate(scratch.count.begin(), scratch.count.end(), std::size_t(0)) == values.size();
}

// Allows the experts of the first `kept` groups of scratch.top (scratch.count becomes their flags).
void allow_kept(std::span<const std::int32_t> group_of_expert, int groups, int kept, LimitedRoutingScratch& scratch,
                std::span<std::uint8_t> allowed) {
  std::fill(scratch.count.begin(), scratch.count.end(), 0);
  for (int j = 0; j < kept; ++j) scratch.count[scratch.top[j]] = 1;
  if (!allow_groups_vector(group_of_expert, groups, scratch.count.data(), allowed))
    for (std::size_t i = 0; i < group_of_expert.size(); ++i)
      allowed[i] = std::uint8_t(scratch.count[group_of_expert[i]]);
}

}  // namespace

void device_limited_allowed(std::span<const float> s, std::span<const std::int32_t> device_of_expert,
                            int D, int M, int k, LimitedRoutingScratch& scratch,
                            std::span<std::uint8_t> allowed) {
  const auto E = s.size();
  if (device_of_expert.size() != E || allowed.size() != E || M < 1 || M > D || k > int(E))
    throw std::invalid_argument("device_limited_allowed: need E scores/devices/mask, 1 <= M <= D, k <= E");
  // A device's score is its experts' maximum: the top 1 of its group.
  if (!score_groups(s, device_of_expert, D, 1, scratch))
    throw std::invalid_argument("device_limited_allowed: device id out of [0, D)");
  scratch.top.resize(static_cast<std::size_t>(D));
  select_topk(scratch.score.data(), nullptr, D, M, scratch.top.data());
  int kept = M, experts = 0;
  for (int r = 0; r < M; ++r) experts += scratch.count[scratch.top[r]];
  if (experts < k) {  // rare: rank every device (the first M stay the same) and keep more
    select_topk(scratch.score.data(), nullptr, D, D, scratch.top.data());
    while (experts < k) experts += scratch.count[scratch.top[kept++]];
  }
  allow_kept(device_of_expert, D, kept, scratch, allowed);
}

void group_limited_allowed(std::span<const float> biased, int groups, int M, int k,
                           LimitedRoutingScratch& scratch, std::span<std::uint8_t> allowed) {
  const int E = static_cast<int>(biased.size());
  if (allowed.size() != biased.size() || groups < 1 || E % groups != 0 || M < 1 || M > groups ||
      k < 1)
    throw std::invalid_argument(
        "group_limited_allowed: need E % groups == 0, 1 <= M <= groups, k >= 1");
  const int size = E / groups;
  const int n = std::min(group_top_values(k, M), size);
  scratch.score.resize(static_cast<std::size_t>(groups));
  scratch.top.resize(static_cast<std::size_t>(M));
  scratch.values.resize(static_cast<std::size_t>(n));
  for (int g = 0; g < groups; ++g)
    scratch.score[g] = top_sum(biased.data() + static_cast<std::ptrdiff_t>(g) * size, size, n, scratch.values.data());
  select_topk(scratch.score.data(), nullptr, groups, M, scratch.top.data());
  std::fill(allowed.begin(), allowed.end(), std::uint8_t{0});
  for (int j = 0; j < M; ++j) {
    const int g = scratch.top[j];
    std::fill_n(allowed.begin() + static_cast<std::ptrdiff_t>(g) * size, size, std::uint8_t{1});
  }
}


void group_limited_allowed(std::span<const float> biased, std::span<const std::int32_t> group_of_expert, int groups,
                           int M, int k, LimitedRoutingScratch& scratch, std::span<std::uint8_t> allowed) {
  const std::size_t E = biased.size();
  if (allowed.size() != E || group_of_expert.size() != E || groups < 1 || M < 1 || M > groups || k < 1)
    throw std::invalid_argument("group_limited_allowed: need E groups/mask entries, 1 <= M <= groups, k >= 1");
  if (!score_groups(biased, group_of_expert, groups, group_top_values(k, M), scratch))
    throw std::invalid_argument("group_limited_allowed: group id out of [0, groups)");
  scratch.top.resize(std::size_t(groups));
  select_topk(scratch.score.data(), nullptr, groups, groups, scratch.top.data());
  // Keep the top M groups, and further ones in the same order if they hold fewer than k experts.
  int kept = 0, experts = 0;
  while (kept < groups && (kept < M || experts < k)) experts += scratch.count[scratch.top[kept++]];
  allow_kept(group_of_expert, groups, kept, scratch, allowed);
}

}  // namespace moesim
