// Bounded input (include/moesim/input.hpp): size-capped file reads, a
// streaming JSON pre-scan, bounded lines, finite-value checks.
#include "moesim/input.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "moesim/error.hpp"

namespace moesim {

namespace {

std::string mib(std::int64_t bytes) { return fmt::format("{} MiB", bytes >> 20); }

[[noreturn]] void too_large(const std::string& path, const std::string& what, std::int64_t max_bytes,
                            const std::string& found) {
  throw InputError(path, "", fmt::format("the {} is larger than the limit of {} ({}); moesim reads at most {} bytes",
                                         what, mib(max_bytes), found, max_bytes));
}

std::string line_col(std::string_view text, std::size_t byte) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') line += 1, col = 1;
    else col += 1;
  }
  return fmt::format("line {}, column {}", line, col);
}

// SAX pre-scan: checks depth, duplicate keys and number range in one pass
// with an explicit stack (nlohmann's parser itself is iterative), before any
// DOM exists. Errors name the JSON pointer of the offending value.
class Prescan final : public nlohmann::json_sax<nlohmann::json> {
 public:
  Prescan(std::string_view text, const std::string& file, const JsonParseOptions& opt)
      : text_(text), file_(file), opt_(opt) {}

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t v, const string_t&) override {
    value();
    if (!std::isfinite(v)) fail(pointer(), "a number is out of range (beyond ±1.8e308)");
    return true;
  }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return open(false); }
  bool key(string_t& k) override {
    Frame& f = stack_.back();
    f.key = k;
    f.positioned = true;
    if (!f.keys.insert(k).second)
      fail(pointer(), fmt::format("duplicate key '{}': each key may appear once in an object", excerpt(k)));
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t byte, const std::string&, const nlohmann::detail::exception& e) override {
    if (e.id == 406) {  // the lexer's number overflow (1e999): a value error, not a syntax error
      value();
      fail(pointer(), "a number is out of range (beyond ±1.8e308)");
    }
    std::string what = e.what();
    const auto pos = what.find("parse error at");  // keep nlohmann's reason, drop its prefix
    const auto colon = what.find(": ", pos == std::string::npos ? 0 : pos);
    const std::string reason = one_line(colon == std::string::npos ? what : what.substr(colon + 2), 300);
    if (opt_.where.empty()) fail_at(line_col(text_, byte == 0 ? 0 : byte - 1), "invalid JSON: " + reason);
    fail_at(opt_.where, fmt::format("invalid JSON at byte {}: {}", byte, reason));
  }

 private:
  struct Frame {
    bool array;
    std::size_t index = 0;    // array: entries so far
    std::string key;          // the current member's key or index
    bool positioned = false;  // a member has started
    std::set<std::string> keys;
  };

  // A value starts: in an array it takes the next index.
  bool value() {
    if (!stack_.empty() && stack_.back().array) {
      stack_.back().key = std::to_string(stack_.back().index++);
      stack_.back().positioned = true;
    }
    return true;
  }
  bool open(bool array) {
    value();
    if (int(stack_.size()) >= opt_.max_depth)
      fail(pointer(), fmt::format("nesting deeper than {} levels of arrays and objects", opt_.max_depth));
    stack_.push_back(Frame{array, 0, {}, false, {}});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }
  std::string pointer() const {
    std::string p;
    for (const Frame& f : stack_)
      if (f.positioned) p += "/" + pointer_token(f.key);
    return p.empty() ? "/" : p;
  }
  [[noreturn]] void fail(const std::string& pointer, const std::string& message) const {
    fail_at(opt_.where.empty() ? pointer : opt_.where + ", at " + pointer, message);
  }
  [[noreturn]] void fail_at(const std::string& where, const std::string& message) const {
    throw InputError(file_, where, message);
  }

  std::string_view text_;
  const std::string& file_;
  const JsonParseOptions& opt_;
  std::vector<Frame> stack_;
};

template <class J>
J parse_bounded(std::string_view text, const std::string& file, const JsonParseOptions& opt) {
  Prescan scan(text, file, opt);
  nlohmann::json::sax_parse(text, &scan, nlohmann::json::input_format_t::json, true, opt.comments);
  try {
    if (!opt.keep) return J::parse(text, nullptr, true, opt.comments);
    typename J::parser_callback_t keep = [&](int depth, nlohmann::json::parse_event_t event, J& parsed) {
      return event != nlohmann::json::parse_event_t::key || opt.keep(depth, parsed.template get<std::string>());
    };
    return J::parse(text, keep, true, opt.comments);
  } catch (const nlohmann::json::exception& e) {  // the pre-scan accepted it: cannot happen
    throw std::logic_error(fmt::format("JSON accepted by the pre-scan failed to parse: {}", e.what()));
  }
}

}  // namespace

std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

namespace {

// A file opened for reading and its fstat, closed on scope exit: what
// read_input_file and fingerprint_file share, with one wording of errors.
class OpenFile {
 public:
  OpenFile(const std::string& path, const std::string& what) : path_(path), what_(what) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw InputError(path, "", fmt::format("cannot open the {}: {}", what, std::strerror(errno)));
    if (::fstat(fd_, &st_) != 0) {
      ::close(fd_);
      throw InputError(path, "", fmt::format("cannot read the {}: {}", what, std::strerror(errno)));
    }
  }
  ~OpenFile() { ::close(fd_); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  const struct stat& stat() const { return st_; }

  // Reads to the end in chunks of `buffer`, calling on_chunk(bytes, n) for each.
  template <class OnChunk>
  void read_all(std::span<char> buffer, OnChunk&& on_chunk) const {
    for (;;) {
      const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw InputError(path_, "", fmt::format("cannot read the {}: {}", what_, std::strerror(errno)));
      if (n == 0) return;
      on_chunk(buffer.data(), std::size_t(n));
    }
  }

 private:
  const std::string& path_;
  const std::string& what_;
  int fd_ = -1;
  struct stat st_ {};
};

}  // namespace

std::string read_input_file(const std::string& path, std::int64_t max_bytes, const std::string& what) {
  const OpenFile file(path, what);
  const struct stat& st = file.stat();
  if (S_ISDIR(st.st_mode)) throw InputError(path, "", fmt::format("expected a {}, got a directory", what));
  if (S_ISREG(st.st_mode) && st.st_size > max_bytes) too_large(path, what, max_bytes, fmt::format("{} bytes", st.st_size));
  std::string text;
  if (S_ISREG(st.st_mode)) text.reserve(std::size_t(st.st_size));
  char buffer[1 << 16];
  file.read_all(buffer, [&](const char* bytes, std::size_t n) {
    if (std::int64_t(text.size() + n) > max_bytes) too_large(path, what, max_bytes, "it does not end within the limit");
    text.append(bytes, n);
  });
  return text;
}

nlohmann::json parse_json_bounded(std::string_view text, const std::string& file, const JsonParseOptions& opt) {
  return parse_bounded<nlohmann::json>(text, file, opt);
}

nlohmann::ordered_json parse_ordered_json_bounded(std::string_view text, const std::string& file,
                                                  const JsonParseOptions& opt) {
  return parse_bounded<nlohmann::ordered_json>(text, file, opt);
}

LineReader::LineReader(const std::string& path, const std::string& what) : path_(path) {
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_) throw InputError(path, "", fmt::format("cannot open the {}: {}", what, std::strerror(errno)));
  struct stat st {};
  if (::fstat(::fileno(file_), &st) == 0 && S_ISDIR(st.st_mode)) {
    std::fclose(file_);
    file_ = nullptr;
    throw InputError(path, "", fmt::format("expected a {}, got a directory", what));
  }
}

LineReader::~LineReader() {
  if (file_) std::fclose(file_);
}

LineReader::LineReader(LineReader&& other) noexcept
    : path_(std::move(other.path_)), file_(other.file_), line_no_(other.line_no_) {
  other.file_ = nullptr;
}

LineReader& LineReader::operator=(LineReader&& other) noexcept {
  if (this != &other) {
    if (file_) std::fclose(file_);
    path_ = std::move(other.path_);
    file_ = other.file_;
    line_no_ = other.line_no_;
    other.file_ = nullptr;
  }
  return *this;
}

bool LineReader::next(std::string& line) {
  line.clear();
  if (!file_) return false;
  bool any = false;
  for (int c; (c = getc_unlocked(file_)) != EOF;) {
    any = true;
    if (c == '\n') break;
    if (line.size() >= kMaxLineBytes)
      throw InputError(path_, fmt::format("line {}", line_no_ + 1),
                       fmt::format("line longer than the limit of {} bytes (one record per line expected)",
                                   kMaxLineBytes));
    line.push_back(char(c));
  }
  if (std::ferror(file_))
    throw InputError(path_, fmt::format("line {}", line_no_ + 1), fmt::format("cannot read: {}", std::strerror(errno)));
  if (!any) return false;
  ++line_no_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

std::pair<std::int64_t, std::string> fingerprint_file(const std::string& path) {
  const std::string what = "input file";
  const OpenFile file(path, what);
  const struct stat& st = file.stat();
  if (!S_ISREG(st.st_mode))
    throw InputError(path, "", "expected a regular file (its content is fingerprinted for sweep resumption)");
  const std::string key = fmt::format("{}\n{}:{}:{}:{}.{}", path, st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                                      st.st_mtim.tv_nsec);
  static std::mutex mutex;
  static std::map<std::string, std::pair<std::int64_t, std::string>> cache;
  {
    std::lock_guard lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis
  std::int64_t size = 0;
  std::vector<char> buffer(1 << 20);
  file.read_all(buffer, [&](const char* bytes, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) hash = (hash ^ static_cast<unsigned char>(bytes[i])) * 0x100000001b3ull;  // FNV prime
    size += std::int64_t(n);
  });
  std::pair<std::int64_t, std::string> out{size, fmt::format("fnv1a64:{:016x}", hash)};
  std::lock_guard lock(mutex);
  cache.emplace(key, out);
  return out;
}

double finite_number(double v, double min, double max, const std::string& file, const std::string& where,
                     const std::string& field) {
  if (!std::isfinite(v) || v < min || v > max)
    throw InputError(file, where,
                     fmt::format("{}: expected a finite number in [{:g}, {:g}], got {}", field, min, max, v));
  return v;
}

std::size_t first_out_of_range(std::span<const float> values, float bound) {
  // Chunked so the common all-good case is one vectorised pass: NaN fails
  // every comparison, so !(|v| <= bound) catches NaN and ±Inf alike.
  constexpr std::size_t kChunk = 1024;
  for (std::size_t start = 0; start < values.size(); start += kChunk) {
    const std::size_t end = std::min(values.size(), start + kChunk);
    bool bad = false;
    for (std::size_t i = start; i < end; ++i) bad |= !(std::fabs(values[i]) <= bound);
    if (bad)
      for (std::size_t i = start; i < end; ++i)
        if (!(std::fabs(values[i]) <= bound)) return i;
  }
  return values.size();
}

}  // namespace moesim
