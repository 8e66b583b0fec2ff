#pragma once
// exp(x) for float in plain arithmetic the compiler can vectorise (glibc's
// vector expf is only offered under -ffast-math). Cody–Waite range reduction
// x = n·ln2 + r, |r| ≤ ln2/2, and the Cephes expf minimax polynomial
// (relative error ≲ 2 ulp on the clamped range). Deterministic: the same
// operations in the same order wherever it runs.
#include <bit>
#include <cstdint>

namespace moesim {

inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);  // keep 2^n a normal float
  // n = round(x/ln2): adding 1.5·2^23 rounds to an integer (default rounding
  // mode) and leaves n in the low mantissa bits; both steps vectorise.
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;
  float r = x - n * 0.693359375f;  // ln2 split in two for an exact reduction
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::int32_t bits = (std::bit_cast<std::int32_t>(shifted) - 0x4B400000 + 127) << 23;  // 2^n
  return p * std::bit_cast<float>(bits);
}

}  // namespace moesim
