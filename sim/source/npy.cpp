// NPY float32 trace reader and writer. Format: numpy.lib.format (NEP 1,
// "A Simple File Format for NumPy Arrays"): magic "\x93NUMPY", two version
// bytes, a little-endian header length (uint16 in 1.0, uint32 in 2.0), then
// an ASCII Python dict literal with 'descr', 'fortran_order' and 'shape',
// padded with spaces and ended by '\n'; the raw data follows.
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "moesim/error.hpp"
#include "moesim/trace_io.hpp"

namespace moesim {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
constexpr std::uint32_t kMaxHeaderBytes = 1 << 16;
constexpr std::int64_t kMaxDimension = 1 << 20;  // layers, experts or k
constexpr char kExpected[] = "expected an array saved with numpy.save";

// A value of the header dict: a string, a boolean or a tuple of integers —
// all numpy writes for a plain array.
struct HeaderValue {
  enum Kind { string, boolean, tuple } kind;
  std::string text;               // string value, or the literal as written (messages)
  bool flag = false;              // boolean value
  std::vector<std::int64_t> ints; // tuple value
};

// Minimal parser of the Python literal numpy writes, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (1000, 64), }
class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::string& text) : path_(path), s_(text) {}

  std::map<std::string, HeaderValue> dict() {
    std::map<std::string, HeaderValue> out;
    expect('{');
    while (!peek('}')) {
      std::string key = quoted();
      expect(':');
      if (!out.emplace(key, value()).second) fail(fmt::format("key '{}' appears twice", excerpt(key)));
      if (!peek('}')) expect(',');
    }
    expect('}');
    skip_space();
    if (i_ != s_.size()) fail("unexpected text after the header dict");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    // The header is the file's text: quote a bounded, escaped excerpt only.
    throw InputError(path_, "", fmt::format("malformed NPY header ({}): {}: '{}'", what, kExpected, excerpt(s_, 200)));
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
      ++i_;
  }
  bool peek(char c) {
    skip_space();
    return i_ < s_.size() && s_[i_] == c;
  }
  void expect(char c) {
    if (!peek(c)) fail(fmt::format("expected '{}' at offset {}", c, i_));
    ++i_;
  }
  std::string quoted() {
    skip_space();
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"'))
      fail(fmt::format("expected a quoted string at offset {}", i_));
    const char q = s_[i_++];
    const auto end = s_.find(q, i_);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(i_, end - i_);
    i_ = end + 1;
    return out;
  }
  std::int64_t integer() {
    skip_space();
    const std::size_t start = i_;
    std::int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (v > (std::numeric_limits<std::int64_t>::max() - 9) / 10) fail("dimension too large");
      v = v * 10 + (s_[i_++] - '0');
    }
    if (i_ == start) fail(fmt::format("expected a non-negative integer at offset {}", start));
    if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long literal
    return v;
  }
  HeaderValue value() {
    skip_space();
    HeaderValue v{HeaderValue::string, {}, false, {}};
    const std::size_t start = i_;
    if (peek('\'') || peek('"')) {
      v.text = quoted();
      return v;
    }
    if (s_.compare(i_, 4, "True") == 0 || s_.compare(i_, 5, "False") == 0) {
      v.kind = HeaderValue::boolean;
      v.flag = s_[i_] == 'T';
      i_ += v.flag ? 4 : 5;
      v.text = v.flag ? "True" : "False";
      return v;
    }
    if (peek('(')) {
      ++i_;
      v.kind = HeaderValue::tuple;
      while (!peek(')')) {
        v.ints.push_back(integer());
        if (!peek(')')) expect(',');
      }
      expect(')');
      v.text = s_.substr(start, i_ - start);
      return v;
    }
    fail(fmt::format("unsupported value at offset {}", i_));
  }

  const std::string& path_;
  const std::string& s_;
  std::size_t i_ = 0;
};

std::uint32_t little_endian(const unsigned char* p, int bytes) {
  std::uint32_t v = 0;
  for (int b = bytes - 1; b >= 0; --b) v = (v << 8) | p[b];
  return v;
}

void swap_if_big_endian(float* data, std::size_t n) {
  if constexpr (std::endian::native == std::endian::big) {
    for (std::size_t i = 0; i < n; ++i) {
      auto u = std::bit_cast<std::uint32_t>(data[i]);
      u = (u >> 24) | ((u >> 8) & 0xff00u) | ((u << 8) & 0xff0000u) | (u << 24);
      data[i] = std::bit_cast<float>(u);
    }
  }
}

}  // namespace

NpyReader NpyReader::open(const std::string& path) {
  NpyReader r;
  r.path_ = path;
  r.in_.open(path, std::ios::binary);
  if (!r.in_)
    throw InputError(path, "", fmt::format("cannot open the trace file: {}", std::strerror(errno)));
  r.in_.seekg(0, std::ios::end);
  const std::int64_t file_size = r.in_.tellg();
  r.in_.seekg(0);

  unsigned char pre[12] = {};
  r.in_.read(reinterpret_cast<char*>(pre), 10);
  if (r.in_.gcount() < 10 || std::memcmp(pre, kMagic, kMagicLen) != 0)
    throw InputError(path, "",
                     fmt::format("not an NPY file: expected the magic string \\x93NUMPY; {}", kExpected));
  const int major = pre[6], minor = pre[7];
  if (!((major == 1 || major == 2) && minor == 0))
    throw InputError(path, "",
                     fmt::format("unsupported NPY format version {}.{}: expected 1.0 or 2.0", major, minor));
  std::int64_t prefix = 10;
  std::uint32_t header_len = little_endian(pre + 8, 2);
  if (major == 2) {
    r.in_.read(reinterpret_cast<char*>(pre + 10), 2);
    if (r.in_.gcount() < 2)
      throw InputError(path, "", "NPY file ends inside its preamble: expected a 4-byte header length");
    header_len = little_endian(pre + 8, 4);
    prefix = 12;
  }
  if (header_len > kMaxHeaderBytes)
    throw InputError(path, "", fmt::format("NPY header of {} bytes: expected at most {} (numpy writes a few hundred)",
                                           header_len, kMaxHeaderBytes));
  if (prefix + std::int64_t(header_len) > file_size)
    throw InputError(path, "",
                     fmt::format("NPY header truncated: expected {} header bytes, the file has {}",
                                 header_len, file_size - prefix));
  std::string header(header_len, '\0');
  r.in_.read(header.data(), header_len);

  auto dict = HeaderParser(path, header).dict();
  for (const char* key : {"descr", "fortran_order", "shape"})
    if (!dict.count(key))
      throw InputError(path, "",
                       fmt::format("NPY header lacks '{}': expected keys 'descr', 'fortran_order', "
                                   "'shape'",
                                   key));
  if (dict.size() != 3)
    for (const auto& [key, v] : dict)
      if (key != "descr" && key != "fortran_order" && key != "shape")
        throw InputError(path, "",
                         fmt::format("unknown NPY header key '{}': expected only 'descr', "
                                     "'fortran_order', 'shape'",
                                     key));
  const HeaderValue& descr = dict.at("descr");
  static const std::map<std::string, int> kDtypes{{"<f4", 4}, {"<i2", 2}, {"<i4", 4}, {"<i8", 8}};
  const auto dtype = descr.kind == HeaderValue::string ? kDtypes.find(descr.text) : kDtypes.end();
  if (dtype == kDtypes.end())
    throw InputError(path, "",
                     fmt::format("expected dtype '<f4' (float32 logits) or '<i2', '<i4', '<i8' (integer expert "
                                 "ids), little-endian, got {}; convert with array.astype('<f4') or "
                                 "array.astype('<i4')",
                                 excerpt(descr.kind == HeaderValue::string ? "'" + descr.text + "'" : descr.text)));
  r.dtype_ = dtype->first;
  r.itemsize_ = dtype->second;
  const HeaderValue& order = dict.at("fortran_order");
  if (order.kind != HeaderValue::boolean || order.flag)
    throw InputError(path, "",
                     fmt::format("expected fortran_order False (C order), got {}; save "
                                 "numpy.ascontiguousarray(array)",
                                 excerpt(order.text)));
  const HeaderValue& shape = dict.at("shape");
  if (shape.kind != HeaderValue::tuple || shape.ints.size() < 2 || shape.ints.size() > 3)
    throw InputError(path, "",
                     fmt::format("expected a 2-D shape (tokens, experts or k) or a 3-D shape (tokens, layers, "
                                 "experts or k), got {}",
                                 excerpt(shape.text)));
  r.shape_ = shape.ints;
  r.rows_ = shape.ints[0];
  r.cols_ = 1;
  for (std::size_t i = 1; i < shape.ints.size(); ++i) {
    // Bounded here, once for every reader: layers, experts and k come from
    // these dimensions and are narrowed to int.
    if (shape.ints[i] < 1)
      throw InputError(path, "",
                       fmt::format("expected every dimension after the first to be at least 1, got shape {}",
                                   shape.text));
    if (shape.ints[i] > kMaxDimension)
      throw InputError(path, "",
                       fmt::format("expected every dimension after the first (layers, experts or k) to be at most "
                                   "{}, got shape {}", kMaxDimension, shape.text));
    if (r.cols_ > (std::int64_t(1) << 40) / shape.ints[i])
      throw InputError(path, "", fmt::format("shape {} is too large", shape.text));
    r.cols_ *= shape.ints[i];
  }
  r.data_offset_ = prefix + header_len;
  const std::int64_t max_rows = (std::numeric_limits<std::int64_t>::max() - r.data_offset_) / r.itemsize_ / r.cols_;
  if (r.rows_ > max_rows)
    throw InputError(path, "", fmt::format("shape {} is too large", shape.text));
  const std::int64_t expected = r.rows_ * r.cols_ * r.itemsize_;
  if (file_size - r.data_offset_ != expected)
    throw InputError(path, "",
                     fmt::format("expected {} bytes of {} data for shape {} after the {}-byte "
                                 "header, found {}",
                                 expected, r.is_float() ? "float32" : "integer", shape.text, r.data_offset_,
                                 file_size - r.data_offset_));
  return r;
}

void NpyReader::read_rows(std::int64_t first, std::int64_t count, float* out) {
  if (!is_float()) throw std::logic_error("NpyReader::read_rows: the array holds integers, not float32");
  read_raw(first, count, reinterpret_cast<char*>(out));
  const std::size_t n = static_cast<std::size_t>(count * cols_);
  swap_if_big_endian(out, n);
  // Checked on every read, not only by check_values: the file may have
  // changed since, and NaN logits route silently (all-NaN rows picked
  // expert 0 twice).
  const std::size_t bad = first_out_of_range({out, n}, kMaxLogit);
  if (bad != n) fail_value(first, out, bad);
}

void NpyReader::read_ids(std::int64_t first, std::int64_t count, std::int64_t* out) {
  if (is_float()) throw std::logic_error("NpyReader::read_ids: the array holds float32, not integers");
  static_assert(std::endian::native == std::endian::little, "integer NPY reading assumes a little-endian host");
  const std::size_t n = std::size_t(count * cols_);
  buffer_.resize(n * std::size_t(itemsize_));
  read_raw(first, count, buffer_.data());
  const char* p = buffer_.data();
  for (std::size_t i = 0; i < n; ++i, p += itemsize_) {
    if (itemsize_ == 2) { std::int16_t v; std::memcpy(&v, p, 2); out[i] = v; }
    else if (itemsize_ == 4) { std::int32_t v; std::memcpy(&v, p, 4); out[i] = v; }
    else { std::int64_t v; std::memcpy(&v, p, 8); out[i] = v; }
  }
}

void NpyReader::read_raw(std::int64_t first, std::int64_t count, char* out) {
  if (first < 0 || count < 0 || first > rows_ - count)
    throw std::out_of_range(fmt::format("NpyReader::read_rows: rows [{}, {}) outside [0, {})", first,
                                        first + count, rows_));
  const std::int64_t n = count * cols_ * itemsize_;
  in_.clear();
  in_.seekg(data_offset_ + first * cols_ * itemsize_);
  in_.read(out, n);
  if (!in_ || in_.gcount() != n)
    throw InputError(path_, "",
                     fmt::format("cannot read rows {}..{}: the file changed or was truncated after it "
                                 "was opened",
                                 first, first + count - 1));
}

void NpyReader::fail_value(std::int64_t first_row, const float* rows, std::size_t index) const {
  throw InputError(path_, fmt::format("row {}, column {}", first_row + std::int64_t(index) / cols_, std::int64_t(index) % cols_),
                   fmt::format("expected a finite logit with |z| ≤ {:g}, got {}", kMaxLogit, rows[index]));
}

void NpyReader::check_values(std::int64_t rows) {
  // In blocks of about 4 MiB, so a large trace is streamed, not loaded.
  const std::int64_t block = std::max<std::int64_t>(1, (std::int64_t(1) << 20) / cols_);
  std::vector<float> buffer(std::size_t(std::min(block, std::max<std::int64_t>(rows, 1)) * cols_));
  for (std::int64_t first = 0; first < rows; first += block)
    read_rows(first, std::min(block, rows - first), buffer.data());
}

void write_npy_f32(const std::string& path, std::int64_t rows, std::int64_t cols,
                   std::span<const float> data, int major_version) {
  if (rows < 0 || cols < 0 || data.size() != static_cast<std::size_t>(rows * cols) ||
      (major_version != 1 && major_version != 2))
    throw std::runtime_error("write_npy_f32: data must hold rows*cols floats; version 1 or 2");
  std::string header =
      fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows, cols);
  // numpy pads so that the data starts on a 64-byte boundary, ending in '\n'.
  const std::size_t prefix = major_version == 1 ? 10 : 12;
  const std::size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(kMagic, kMagicLen);
  out.put(static_cast<char>(major_version));
  out.put(0);
  const std::uint32_t len = static_cast<std::uint32_t>(header.size());
  for (std::size_t b = 0; b < prefix - 8; ++b) out.put(static_cast<char>((len >> (8 * b)) & 0xff));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  std::vector<float> row(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    std::copy_n(data.begin() + r * cols, cols, row.begin());
    swap_if_big_endian(row.data(), row.size());
    out.write(reinterpret_cast<const char*>(row.data()), static_cast<std::streamsize>(cols * 4));
  }
  if (!out) throw std::runtime_error("write_npy_f32: cannot write " + path);
}

}  // namespace moesim
