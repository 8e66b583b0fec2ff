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
constexpr int kChunks = kGradientChunks;
// Dense ∂L/∂z: register tiles of kRows input dimensions × kCols experts (16 of
// the 32 AVX-512 vector registers) sum a block of kBlock tokens, whose ∂L/∂z
// rows (kBlock × E) stay in cache while every tile reads them.
constexpr int kRows = 8, kCols = 32, kBlock = kGradientBlock;
constexpr int kColumns = 16;  // experts a thread reduces at a time: a 64-byte line of a grad_w row

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

// A chunk's partial (E×d, expert-major) from sigmoid scores and the selected
// experts' ∂L/∂s only (∂s_e/∂z_e = s_e(1 − s_e), no other entry): k
// contiguous multiply-adds of x_t a token. (Grouping the terms by expert to
// sum them in registers was no faster: the scattered x_t rows cost what the
// stores saved.)
void sparse_chunk(const float* x, std::span<const float> s, const StepGradient& g, int t0, int t1, int d, int E,
                  int k, float* part) {
  std::fill_n(part, std::size_t(E) * d, 0.0f);
  for (int t = t0; t < t1; ++t) {
    const float* xt = &x[std::size_t(t) * d];
    for (int r = 0; r < k; ++r) {
      const std::size_t j = std::size_t(t) * k + r;
      const int e = g.expert[j];
      const float se = g.affinity.empty() ? s[std::size_t(t) * E + e] : g.affinity[j];
      const float ge = g.selected[j] * se * (1.0f - se);
      if (ge == 0.0f) continue;
      float* pe = &part[std::size_t(e) * d];
      for (int i = 0; i < d; ++i) pe[i] += ge * xt[i];
    }
  }
}

// out[j] = Σ_c partials[c·size + offset + j] for j < n, chunks in order from 0.0f.
void sum_chunks(const float* partials, std::size_t size, std::size_t offset, int n, float* out) {
  std::fill_n(out, n, 0.0f);
  for (int c = 0; c < kChunks; ++c) {
    const float* p = &partials[size * c + offset];
    for (int j = 0; j < n; ++j) out[j] += p[j];
  }
}

// n floats of v from a 64-byte boundary (v grows as needed): a vector load
// or store that splits a cache line costs two.
float* line_aligned(std::vector<float>& v, std::size_t n) {
  constexpr std::size_t kLine = 64 / sizeof(float);
  if (v.size() < n + kLine) v.resize(n + kLine);
  return v.data() + (kLine - reinterpret_cast<std::uintptr_t>(v.data()) / sizeof(float) % kLine) % kLine;
}

}  // namespace

void weight_gradient(ScoreFunction f, std::span<const float> x, std::span<const float> s, const StepGradient& g,
                     const Shape& shape, std::span<float> grad_w, GradientScratch& scratch) {
  const int T = shape.tokens(), d = shape.hidden, E = shape.experts, k = shape.top_k;
  const bool sparse = f == ScoreFunction::sigmoid && g.s.empty() && g.z.empty();
  const std::size_t size = std::size_t(d) * E;
  const std::size_t rows = sparse ? 0 : std::size_t(kBlock + 1) * E;
  float* const partials = line_aligned(scratch.partials, size * kChunks);
  float* const row_buffers = line_aligned(scratch.rows, rows * kChunks);
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int c = 0; c < kChunks; ++c) {
      const int t0 = int(std::int64_t(T) * c / kChunks), t1 = int(std::int64_t(T) * (c + 1) / kChunks);
      float* part = &partials[size * c];
      if (sparse)
        sparse_chunk(x.data(), s, g, t0, t1, d, E, k, part);
      else
        dense_chunk(f, x.data(), s, g, t0, t1, d, E, k, &row_buffers[rows * c], part);
    }
    // grad_w[i,e] = Σ_c part_c[i,e]: a sparse partial is expert-major (E×d),
    // a dense one i-major (d×E).
    if (sparse) {
#pragma omp for schedule(static)
      for (int e0 = 0; e0 < E; e0 += kColumns)  // a cache line of each grad_w row per thread; its partials in L1
        for (int i = 0; i < d; ++i)
          for (int e = e0; e < std::min(E, e0 + kColumns); ++e) {
            float sum = 0.0f;
            for (int c = 0; c < kChunks; ++c) sum += partials[size * c + std::size_t(e) * d + i];
            grad_w[std::size_t(i) * E + e] = sum;
          }
    } else {
#pragma omp for schedule(static)
      for (int i = 0; i < d; ++i) sum_chunks(partials, size, std::size_t(i) * E, E, &grad_w[std::size_t(i) * E]);
    }
  }
}

void parallel_zero(std::span<float> v) {
  if (v.empty()) return;  // no thread team for nothing (most strategies keep no T×E gradient)
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.0f;
}

bool sgd_update(std::span<float> W, std::span<const float> grad_w, double lr) {
  // On one thread: W is only d×E (16 K weights for bench-v3, microseconds),
  // less than a thread team's barrier costs on a busy machine.
  const float rate = float(lr);
  bool finite = true;
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
