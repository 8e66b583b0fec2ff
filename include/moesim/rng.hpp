#pragma once
// Deterministic random numbers from named sub-streams (MODEL.md §1): every
// consumer derives its own generator from (scenario seed, stream name, a, b),
// so adding a strategy or a thread never shifts another stream. The generator
// (xoshiro256**) and the normal sampler are written out here rather than taken
// from <random>, whose distributions differ between standard libraries.
#include <cmath>
#include <cstdint>
#include <string_view>

namespace moesim {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& w : state_) w = splitmix(seed);
  }
  // An independent stream for (seed, name, a, b), e.g. ("generator", step, sequence).
  static Rng stream(std::uint64_t seed, std::string_view name, std::uint64_t a = 0, std::uint64_t b = 0) {
    std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the name
    for (char c : name) h = (h ^ std::uint8_t(c)) * 0x100000001b3ull;
    std::uint64_t s = seed;
    std::uint64_t mixed = splitmix(s) ^ h;
    mixed = splitmix(mixed) ^ a;
    mixed = splitmix(mixed) ^ b;
    return Rng(mixed);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return unit(next()); }
  // Standard normal by the ziggurat method (Marsaglia & Tsang 2000, in
  // Doornik's 2005 ZIGNOR form: the layer and the uniform come from disjoint
  // bits). Exact, not an approximation: 97.2% of draws (the mean ratio
  // x[i+1]/x[i] of the tables below) cost one 64-bit number, a table lookup
  // and a multiply, with no log or sqrt (README: Performance, BM_Generator).
  double normal() {
    return normal_from(next(), [this] { return next(); });
  }
  // out[i] = mean[i] + scale·normal() for i < n: the same draws as n calls,
  // and the same state after. normal()'s fast path inline, on the state in
  // four locals (registers) and with the tables looked up once (not a guarded
  // static per draw); only a rejected draw (2.8%) stores the state and takes
  // the general path out of line. BM_Generator/1: 3.03–3.31 → 2.67–2.87 ms
  // against a copy of the state that the rejection path's lambda kept in memory.
  void add_normals(const float* mean, double scale, float* out, int n) {
    const Ziggurat& z = ziggurat();
    std::uint64_t s0 = state_[0], s1 = state_[1], s2 = state_[2], s3 = state_[3];
    for (int i = 0; i < n; ++i) {
      const std::uint64_t r = rotl(s1 * 5, 7) * 9;  // next(), on the state in registers
      const std::uint64_t t = s1 << 17;
      s2 ^= s0, s3 ^= s1, s1 ^= s2, s0 ^= s3, s2 ^= t, s3 = rotl(s3, 45);
      const int layer = int(r & 0x7f);
      const double u = uniform_pm1(r);
      double x;
      if (std::abs(u) < z.ratio[layer]) [[likely]] {
        x = u * z.x[layer];
      } else {
        state_[0] = s0, state_[1] = s1, state_[2] = s2, state_[3] = s3;
        x = rejected(r);
        s0 = state_[0], s1 = state_[1], s2 = state_[2], s3 = state_[3];
      }
      out[i] = mean[i] + float(scale * x);
    }
    state_[0] = s0, state_[1] = s1, state_[2] = s2, state_[3] = s3;
  }

 private:
  // normal_from after a first number `r` outside its layer's rectangle: out of
  // line, so that add_normals keeps the state in registers.
  [[gnu::noinline]] double rejected(std::uint64_t r) {
    return normal_from(r, [this] { return next(); });
  }
  // The ziggurat draw whose first 64-bit number is `r`; `next` gives the
  // numbers after it (uniform on the whole range).
  template <class Next>
  static double normal_from(std::uint64_t r, Next&& next) {
    const Ziggurat& z = ziggurat();
    for (;; r = next()) {
      const int i = int(r & 0x7f);
      const double u = uniform_pm1(r);
      if (std::abs(u) < z.ratio[i]) return u * z.x[i];  // inside the layer's rectangle
      if (i == 0) return tail(u < 0.0, next);
      // The wedge between rectangles: accept under the density.
      const double x = u * z.x[i];
      const double f0 = std::exp(-0.5 * (z.x[i] * z.x[i] - x * x));
      const double f1 = std::exp(-0.5 * (z.x[i + 1] * z.x[i + 1] - x * x));
      if (f1 + unit(next()) * (f0 - f1) < 1.0) return x;
    }
  }
  // [0, 1) from the top 53 bits.
  static double unit(std::uint64_t r) { return double(r >> 11) * 0x1.0p-53; }
  // [−1, 1) from the top 53 bits (the layer index takes the low 7).
  static double uniform_pm1(std::uint64_t r) { return double(r >> 11) * 0x1.0p-52 - 1.0; }
  // 128 layers of equal area V; x[0] = V/f(R) is the base (with the tail).
  static constexpr int kLayers = 128;
  static constexpr double kR = 3.442619855899, kV = 9.91256303526217e-3;
  struct Ziggurat {
    double x[kLayers + 1], ratio[kLayers];
    Ziggurat() {
      double f = std::exp(-0.5 * kR * kR);
      x[0] = kV / f;
      x[1] = kR;
      x[kLayers] = 0.0;
      for (int i = 2; i < kLayers; ++i) {
        x[i] = std::sqrt(-2.0 * std::log(kV / x[i - 1] + f));
        f = std::exp(-0.5 * x[i] * x[i]);
      }
      for (int i = 0; i < kLayers; ++i) ratio[i] = x[i + 1] / x[i];
    }
  };
  static const Ziggurat& ziggurat() {
    static const Ziggurat tables;
    return tables;
  }
  // Uniform in (0, 1): safe under log.
  static double open_uniform(std::uint64_t r) { return (double(r >> 11) + 0.5) * 0x1.0p-53; }
  // Beyond ±R (Marsaglia 1964).
  template <class Next>
  static double tail(bool negative, Next& next) {
    double x, y;
    do {
      x = std::log(open_uniform(next())) / kR;
      y = std::log(open_uniform(next()));
    } while (-2.0 * y < x * x);
    return negative ? x - kR : kR - x;
  }
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t state_[4];
};

}  // namespace moesim
