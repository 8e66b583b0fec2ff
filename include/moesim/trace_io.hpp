#pragma once
// Readers for replayed routing traces (MODEL.md §1 "trace"; FORMATS.md
// "Trace replay"): router logits as NPY float32 [tokens, experts], or top-k
// records as JSONL. Every problem with a file is a moesim::InputError that
// names the file, the place (JSONL: "line N") and what was expected.
#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "moesim/input.hpp"

namespace moesim {

inline constexpr double kMaxGateWeight = 1e6;  // a JSONL gate weight (route_scale's upper bound)
inline constexpr float kMaxLogit = 1e6f;       // |logit| in an NPY trace

// Streaming reader of a 2-D or 3-D little-endian C-order NPY array of float32
// (router logits) or 16/32/64-bit integers (expert ids), format versions 1.0
// and 2.0 (numpy.lib.format). open() validates the magic, version, header dict
// ('descr', 'fortran_order' False, 'shape') and the file size against the
// shape; rows (the first dimension) are then read on demand, so a large trace
// is never loaded whole. A row holds cols() = the product of the other
// dimensions' values.
class NpyReader {
 public:
  static NpyReader open(const std::string& path);

  const std::string& path() const { return path_; }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  const std::string& dtype() const { return dtype_; }  // '<f4', '<i2', '<i4' or '<i8'
  bool is_float() const { return dtype_ == "<f4"; }
  // Copies rows [first, first + count) into out (count·cols values): floats
  // from a float32 array, ids from an integer one (std::logic_error for the
  // other kind). std::out_of_range if the range is outside the array;
  // InputError if the file can no longer be read (changed or truncated), or
  // for a float that is not finite with |z| ≤ kMaxLogit (naming its row and column).
  void read_rows(std::int64_t first, std::int64_t count, float* out);
  void read_ids(std::int64_t first, std::int64_t count, std::int64_t* out);
  // Reads rows [0, rows) in blocks only to check their values (validation).
  void check_values(std::int64_t rows);

 private:
  NpyReader() = default;
  void read_raw(std::int64_t first, std::int64_t count, char* out);
  [[noreturn]] void fail_value(std::int64_t first_row, const float* rows, std::size_t index) const;
  std::string path_;
  std::ifstream in_;
  std::string dtype_;
  int itemsize_ = 4;
  std::vector<std::int64_t> shape_;
  std::vector<char> buffer_;
  std::int64_t rows_ = 0, cols_ = 0, data_offset_ = 0;
};

// Writes data (rows·cols floats, row-major) as an NPY file of the given
// format version (1 or 2). For tests and tools; throws std::runtime_error.
void write_npy_f32(const std::string& path, std::int64_t rows, std::int64_t cols,
                   std::span<const float> data, int major_version = 1);

// What a full scan of a JSONL trace found.
struct TraceScan {
  std::int64_t steps = 0;   // complete steps
  std::int64_t tokens = 0;  // tokens in total (may end inside a step)
};

// Reader of JSONL top-k traces, one token per line:
//   {"step":s,"seq":n,"topk_experts":[...],"topk_weights":[...]}
// Steps count from 0 and increase by one; within a step, sequences 0..B-1
// follow in order, each with exactly L lines (token t of the step belongs to
// sequence t / L). topk_experts lists k distinct experts in [0, E) in rank
// order (it becomes expert[t·k + j] as listed); topk_weights k gate weights
// in [0, kMaxGateWeight]. Blank lines are skipped; "\r\n" endings are
// accepted; lines, nesting and keys are bounded as in input.hpp.
class JsonlTraceReader {
 public:
  static JsonlTraceReader open(const std::string& path, int experts, int top_k, int sequences,
                               int seq_len);

  // Reads the next step into expert[T·k] and gate[T·k] (T = B·L). Returns
  // false if the file ends before the step's first token; throws InputError
  // ("line N") for a malformed line or a file that ends inside the step.
  bool read_step(std::span<std::int32_t> expert, std::span<float> gate);
  std::int64_t next_step() const { return step_; }

  // Validates every line of a trace (for `moesim validate`); a file ending
  // inside a step is counted in `tokens`, not an error.
  static TraceScan scan(const std::string& path, int experts, int top_k, int sequences,
                        int seq_len);

 private:
  JsonlTraceReader() = default;
  // Reads and validates one token line as token `index` of the current step.
  // Returns false at end of file.
  bool read_token(std::int64_t index, std::int32_t* expert, float* gate);

  std::string path_;
  LineReader in_;
  std::string line_;  // reused line buffer
  std::int64_t step_ = 0;
  int experts_ = 0, top_k_ = 0, sequences_ = 0, seq_len_ = 0;
};

}  // namespace moesim
