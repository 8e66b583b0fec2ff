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
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
  // Standard normal (Marsaglia polar method; caches the second value).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, q;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      q = u * u + v * v;
    } while (q >= 1.0 || q == 0.0);
    const double f = std::sqrt(-2.0 * std::log(q) / q);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t state_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace moesim
