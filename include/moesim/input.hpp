#pragma once
// Bounded input: the entry points every reader of user files uses, so that no
// input can crash moesim, exhaust its memory or forge its messages (README
// "Reliability"). A new reader (a JSON or JSONL format, a binary trace) should
//   - get its bytes from read_input_file (whole files: stat before reading,
//     a size cap, also for /dev/zero and pipes) or LineReader (JSONL: one
//     line at a time, each at most kMaxLineBytes),
//   - parse JSON only with parse_json_bounded (nesting depth ≤ kMaxJsonDepth,
//     duplicate keys and numbers beyond double rejected, all before a DOM is
//     built; errors name the file, the line and the JSON pointer),
//   - check every number it keeps with finite_number / first_non_finite, and
//   - quote user text in messages through excerpt (InputError already keeps
//     each message to one line with one_line).
// Every failure is an InputError (exit 2).
#include <cstdint>
#include <cstdio>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "moesim/error.hpp"

namespace moesim {

// Limits (README "Reliability" states them).
inline constexpr int kMaxJsonDepth = 64;                          // nested arrays/objects in any JSON input
inline constexpr std::int64_t kMaxScenarioBytes = 64ll << 20;     // scenario files
inline constexpr std::int64_t kMaxLoadsBytes = 256ll << 20;       // `place --loads` files
inline constexpr std::int64_t kMaxResultBytes = 1ll << 30;        // result files read by compare / sweep
inline constexpr std::size_t kMaxLineBytes = 1u << 20;            // one JSONL line
inline constexpr int kMaxPointerTokens = kMaxJsonDepth;           // tokens of a --set / --vary pointer

// The whole content of a file of at most max_bytes. A regular file is
// stat-ed first and refused by its size before any byte is read; anything
// else (a pipe, /dev/zero) is read up to the limit and refused past it.
// `what` names the kind of file in messages ("scenario file").
std::string read_input_file(const std::string& path, std::int64_t max_bytes, const std::string& what);

struct JsonParseOptions {
  int max_depth = kMaxJsonDepth;
  bool comments = false;  // allow // and /* */ comments (scenario files)
  // Where the text sits in its file, for messages: "" for a whole file
  // (syntax errors then name "line L, column C"), or e.g. "line 12" for one
  // JSONL record (syntax errors name the byte within the line).
  std::string where;
  // Optional: members of objects to drop while parsing (keep(depth, key)
  // false; depth 1 = the top-level object), so a reader that needs a few
  // fields of a large file never holds the rest.
  std::function<bool(int depth, const std::string& key)> keep;
};

// Parses JSON text after a streaming pre-scan (no recursion, no DOM) that
// rejects nesting deeper than max_depth, a key repeated within one object and
// numbers beyond the range of double. Throws InputError(file, where, ...).
nlohmann::json parse_json_bounded(std::string_view text, const std::string& file, const JsonParseOptions& = {});
nlohmann::ordered_json parse_ordered_json_bounded(std::string_view text, const std::string& file,
                                                  const JsonParseOptions& = {});

// Reads a text file line by line through a fixed buffer; a line longer than
// kMaxLineBytes is an InputError naming it, so a file without newlines
// (/dev/zero) cannot exhaust memory. '\r' before '\n' is removed.
class LineReader {
 public:
  LineReader() = default;
  LineReader(const std::string& path, const std::string& what);  // InputError if it cannot be opened
  ~LineReader();
  LineReader(LineReader&& other) noexcept;
  LineReader& operator=(LineReader&& other) noexcept;
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  // The next line (without its end); false at end of file.
  bool next(std::string& line);
  std::int64_t line_number() const { return line_no_; }  // of the line last returned (1-based)

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::int64_t line_no_ = 0;
};

// Size and FNV-1a 64-bit hash of a file's content ("fnv1a64:<hex>"), read
// in blocks; cached per (path, device, inode, size, mtime) within a process.
std::pair<std::int64_t, std::string> fingerprint_file(const std::string& path);

// One JSON pointer token, escaped (RFC 6901): '~' → "~0", '/' → "~1".
std::string pointer_token(const std::string& key);

// v if it is finite and within [min, max]; else InputError(file, where,
// "<field>: expected a finite number in [min, max], got v").
double finite_number(double v, double min, double max, const std::string& file, const std::string& where,
                     const std::string& field);
// Index of the first value that is NaN, ±Inf or of magnitude above `bound`;
// values.size() if there is none. One branch-free pass.
std::size_t first_out_of_range(std::span<const float> values, float bound);

// User text quoted in a message: one_line (error.hpp), at most max_chars.
inline std::string excerpt(std::string_view text, std::size_t max_chars = 60) { return one_line(text, max_chars); }

}  // namespace moesim
