#include "sgd.hpp"

#include "moesim/scores.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace moesim {

namespace {

// Every grad_w[i,e] is Σ over a fixed number of token chunks, added in chunk
// order from 0.0f, of the chunk's partial Σ_t x_t,i·∂L/∂z_t,e taken in token
// order from 0.0f (one fused multiply-add a term): bit-identical for any
// number of threads, and whatever the tiling below, which only changes where
// a partial waits between terms (a register or memory), never its order.
constexpr int kChunks = 8;
// Dense ∂L/∂z: register tiles of kRows input dimensions × kCols experts (16 of
// the 32 AVX-512 vector registers) sum a block of kBlock tokens, whose ∂L/∂z
// rows (kBlock × E) stay in cache while every tile reads them.
constexpr int kRows = 8, kCols = 32, kBlock = 64;
// Sparse ∂L/∂z: an expert's terms add into kSpan input dimensions in registers.
constexpr int kSpan = 64;

// part[i0.., e0..] (d×E, i-major) += Σ_{t < n} x_t[i0..]·gz_t[e0..] over the
// block's tokens in order; `first` starts from zero instead of part.
template <class Rows, class Cols>
void dense_tile(const float* x, const float* gz, int n, int d, int E, int i0, int e0, Rows rows, Cols cols, bool first,
                float* part) {
  float acc[kRows][kCols];
  for (int i = 0; i < rows; ++i)
    for (int e = 0; e < cols; ++e) acc[i][e] = first ? 0.0f : part[std::size_t(i0 + i) * E + e0 + e];
  for (int t = 0; t < n; ++t) {
    const float* xt = &x[std::size_t(t) * d + i0];
    const float* gt = &gz[std::size_t(t) * E + e0];
    for (int i = 0; i < rows; ++i) {
      const float xi = xt[i];
      for (int e = 0; e < cols; ++e) acc[i][e] += gt[e] * xi;
    }
  }
  for (int i = 0; i < rows; ++i) std::copy_n(acc[i], int(cols), &part[std::size_t(i0 + i) * E + e0]);
}

// A chunk's partial from the dense ∂L/∂z rows, kBlock tokens at a time. A term
// whose ∂L/∂z is zero adds ±0: the partials may differ from skipping it only
// in the sign of a zero, which the chunk sum's 0.0f start erases (for finite x).
void dense_chunk(ScoreFunction f, const float* x, std::span<const float> s, const StepGradient& g, int t0, int t1,
                 int d, int E, int k, float* rows, float* part) {
  float* gs = rows + std::size_t(kBlock) * E;
  if (t0 == t1) std::fill_n(part, std::size_t(d) * E, 0.0f);  // a chunk without tokens (T < kChunks)
  for (int b0 = t0; b0 < t1; b0 += kBlock) {
    const int n = std::min(kBlock, t1 - b0);
    for (int t = b0; t < b0 + n; ++t) {  // ∂L/∂z_t = J_sᵀ·∂L/∂s_t + g.z_t
      const std::size_t row = std::size_t(t) * E;
      float* gz = &rows[std::size_t(t - b0) * E];
      if (g.s.empty()) std::fill_n(gs, E, 0.0f);
      else std::copy_n(&g.s[row], E, gs);
      for (int r = 0; r < k; ++r) gs[g.expert[std::size_t(t) * k + r]] += g.selected[std::size_t(t) * k + r];
      if (g.z.empty()) std::fill_n(gz, E, 0.0f);
      else std::copy_n(&g.z[row], E, gz);
      score_row_backward(f, &s[row], gs, gz, E);
    }
    const float* xb = &x[std::size_t(b0) * d];
    for (int e0 = 0; e0 < E; e0 += kCols)
      for (int i0 = 0; i0 < d; i0 += kRows) {
        const int rn = std::min(kRows, d - i0), cn = std::min(kCols, E - e0);
        if (rn == kRows && cn == kCols)  // constant trip counts vectorise
          dense_tile(xb, rows, n, d, E, i0, e0, std::integral_constant<int, kRows>{},
                     std::integral_constant<int, kCols>{}, b0 == t0, part);
        else
          dense_tile(xb, rows, n, d, E, i0, e0, rn, cn, b0 == t0, part);
      }
  }
}

// part[i0.., e] = Σ over the expert's terms in token order of factor·x_t[i0..].
template <class Span>
void sparse_expert(const float* x, const std::int32_t* token, const float* factor, int terms, int d, int E, int i0,
                   Span span, int e, float* part) {
  float acc[kSpan];
  for (int i = 0; i < span; ++i) acc[i] = 0.0f;
  for (int j = 0; j < terms; ++j) {
    const float* xt = &x[std::size_t(token[j]) * d + i0];
    const float ge = factor[j];
    for (int i = 0; i < span; ++i) acc[i] += ge * xt[i];
  }
  for (int i = 0; i < span; ++i) part[std::size_t(i0 + i) * E + e] = acc[i];
}

// A chunk's partial from sigmoid scores and the selected experts' ∂L/∂s only
// (∂s_e/∂z_e = s_e(1 − s_e), no other entry): the non-zero terms, grouped by
// expert in token order (a stable counting sort), each expert's summed in
// registers. `index` holds 2E + 1 offsets then a token per term.
void sparse_chunk(const float* x, std::span<const float> s, const StepGradient& g, int t0, int t1, int d, int E,
                  int k, float* factor, std::int32_t* index, float* part) {
  std::int32_t* start = index;          // E + 1: the expert's first term
  std::int32_t* next = start + E + 1;   // E: where its next term goes
  std::int32_t* token = next + E;       // one per term
  auto for_terms = [&](auto&& term) {
    for (int t = t0; t < t1; ++t)
      for (int r = 0; r < k; ++r) {
        const std::size_t j = std::size_t(t) * k + r;
        const int e = g.expert[j];
        const float se = g.affinity.empty() ? s[std::size_t(t) * E + e] : g.affinity[j];
        const float ge = g.selected[j] * se * (1.0f - se);
        if (ge != 0.0f) term(t, e, ge);
      }
  };
  std::fill_n(start, E + 1, 0);
  for_terms([&](int, int e, float) { ++start[e + 1]; });
  for (int e = 0; e < E; ++e) start[e + 1] += start[e];
  std::copy_n(start, E, next);
  for_terms([&](int t, int e, float ge) {
    const std::int32_t at = next[e]++;
    token[at] = t;
    factor[at] = ge;
  });
  for (int e = 0; e < E; ++e)
    for (int i0 = 0; i0 < d; i0 += kSpan) {
      const std::int32_t* tk = token + start[e];
      const float* fe = factor + start[e];
      const int terms = start[e + 1] - start[e];
      if (d - i0 >= kSpan) sparse_expert(x, tk, fe, terms, d, E, i0, std::integral_constant<int, kSpan>{}, e, part);
      else sparse_expert(x, tk, fe, terms, d, E, i0, d - i0, e, part);
    }
}

}  // namespace

void weight_gradient(ScoreFunction f, std::span<const float> x, std::span<const float> s, const StepGradient& g,
                     const Shape& shape, std::span<float> grad_w, GradientScratch& scratch) {
  const int T = shape.tokens(), d = shape.hidden, E = shape.experts, k = shape.top_k;
  const bool sparse = f == ScoreFunction::sigmoid && g.s.empty() && g.z.empty();
  const std::size_t size = std::size_t(d) * E, chunk_terms = std::size_t(T / kChunks + 1) * k;
  const std::size_t rows = sparse ? chunk_terms : std::size_t(kBlock + 1) * E;
  const std::size_t index = sparse ? 2 * std::size_t(E) + 1 + chunk_terms : 0;
  if (scratch.partials.size() < size * kChunks) scratch.partials.resize(size * kChunks);
  if (scratch.rows.size() < rows * kChunks) scratch.rows.resize(rows * kChunks);
  if (scratch.index.size() < index * kChunks) scratch.index.resize(index * kChunks);
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int c = 0; c < kChunks; ++c) {
      const int t0 = int(std::int64_t(T) * c / kChunks), t1 = int(std::int64_t(T) * (c + 1) / kChunks);
      float* part = &scratch.partials[size * c];
      if (sparse)
        sparse_chunk(x.data(), s, g, t0, t1, d, E, k, &scratch.rows[rows * c], &scratch.index[index * c], part);
      else
        dense_chunk(f, x.data(), s, g, t0, t1, d, E, k, &scratch.rows[rows * c], part);
    }
#pragma omp for schedule(static)
    for (int i = 0; i < d; ++i) {
      float* out = &grad_w[std::size_t(i) * E];
      std::fill_n(out, E, 0.0f);
      for (int c = 0; c < kChunks; ++c) {
        const float* p = &scratch.partials[size * c + std::size_t(i) * E];
        for (int e = 0; e < E; ++e) out[e] += p[e];
      }
    }
  }
}

void parallel_zero(std::span<float> v) {
  if (v.empty()) return;  // no thread team for nothing (most strategies keep no T×E gradient)
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.0f;
}

bool sgd_update(std::span<float> W, std::span<const float> grad_w, double lr) {
  const float rate = float(lr);
  bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite)
  for (std::size_t i = 0; i < W.size(); ++i) {
    W[i] -= rate * grad_w[i];
    finite = finite && std::isfinite(W[i]);
  }
  return finite;
}

float max_abs(std::span<const float> z) {
  float m = 0.0f;
#pragma omp parallel for schedule(static) reduction(max : m)
  for (std::size_t i = 0; i < z.size(); ++i) {
    const float a = std::abs(z[i]);
    m = a > m ? a : m;  // this form vectorises (std::max's NaN rule does not)
  }
  return m;
}

}  // namespace moesim
