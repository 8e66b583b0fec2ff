// Bounded input (input.hpp): depth, duplicates, sizes, lines, finite values,
// one-line messages, fingerprints.
#include "moesim/input.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>

#include "../testing/fixtures.hpp"
#include "moesim/error.hpp"

using namespace moesim;
using namespace moesim::testing;

namespace {

std::string nested(int depth, const std::string& inner = "1") {
  return std::string(std::size_t(depth), '[') + inner + std::string(std::size_t(depth), ']');
}

InputError parse_error(const std::string& text, const JsonParseOptions& options = {}) {
  try {
    (void)parse_json_bounded(text, "f.json", options);
  } catch (const InputError& e) {
    return e;
  }
  FAIL("no InputError for " << text.substr(0, 80));
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("JSON nesting is bounded before any value is built", "[input][json]") {
  CHECK(parse_json_bounded(nested(kMaxJsonDepth), "f.json").is_array());
  const InputError e = parse_error(nested(kMaxJsonDepth + 1));
  CHECK(e.file() == "f.json");
  CHECK(e.message() == "nesting deeper than 64 levels of arrays and objects");
  // The pointer names where the too-deep value starts: 64 arrays, each at index 0.
  std::string pointer;
  for (int i = 0; i < kMaxJsonDepth; ++i) pointer += "/0";
  CHECK(e.where() == pointer);
  // 200 000 levels (once a stack overflow in printing or walking the value).
  CHECK(parse_error(nested(200000)).message().find("nesting deeper than 64") == 0);
  CHECK(parse_error(R"({"a": {"b": [1, )" + nested(70) + "]}}").where().rfind("/a/b/1/0/0", 0) == 0);
}

TEST_CASE("JSON: duplicate keys, overflowing numbers and syntax errors name the place", "[input][json]") {
  const InputError dup = parse_error(R"({"model": {"experts": 8, "experts": 16}})");
  CHECK(dup.where() == "/model/experts");
  CHECK(dup.message() == "duplicate key 'experts': each key may appear once in an object");
  CHECK(parse_error(R"([{"a": 1}, {"a": 2, "b": {"a": 3, "a": 4}}])").where() == "/1/b/a");
  // The same key in sibling objects is fine.
  CHECK(parse_json_bounded(R"([{"a": 1}, {"a": 2}])", "f.json").size() == 2);
  const InputError big = parse_error(R"({"x": [1, 1e999]})");
  CHECK(big.where() == "/x/1");
  CHECK(big.message() == "a number is out of range (beyond ±1.8e308)");
  const InputError syntax = parse_error("{\"a\": 1,\n  }");
  CHECK(syntax.where() == "line 2, column 3");
  CHECK(syntax.message().rfind("invalid JSON: ", 0) == 0);
  JsonParseOptions line;
  line.where = "line 7";
  CHECK(parse_error("{\"a\": 1, \"a\": 2}", line).where() == "line 7, at /a");
  CHECK(parse_error("{\"a\": ", line).message().rfind("invalid JSON at byte 7", 0) == 0);
  JsonParseOptions comments;
  comments.comments = true;
  CHECK(parse_json_bounded("// note\n{\"a\": 1}", "f.json", comments)["a"] == 1);
}

TEST_CASE("JSON: a keep filter drops members while parsing", "[input][json]") {
  JsonParseOptions options;
  options.keep = [](int depth, const std::string& key) { return depth != 1 || key != "series"; };
  const auto j = parse_ordered_json_bounded(R"({"a": 1, "series": {"x": [1, 2, 3]}, "b": {"series": 2}})", "f", options);
  CHECK(j.dump() == R"({"a":1,"b":{"series":2}})");
}

TEST_CASE("read_input_file refuses large files by size before reading them", "[input][file]") {
  TempDir dir;
  const std::string small = dir.file("small.json"), sparse = dir.file("sparse.json");
  write_text(small, "{}");
  CHECK(read_input_file(small, 2, "scenario file") == "{}");
  CHECK_THROWS_WITH(read_input_file(small, 1, "scenario file"),
                    Catch::Contains("the scenario file is larger than the limit of 0 MiB (2 bytes)"));
  // 3 GB without a byte written: refused by its size, so no bad_alloc.
  write_text(sparse, "");
  std::filesystem::resize_file(sparse, 3'000'000'000ull);
  CHECK_THROWS_WITH(read_input_file(sparse, kMaxScenarioBytes, "scenario file"),
                    Catch::Contains("larger than the limit of 64 MiB (3000000000 bytes)"));
  // A device without an end is read only up to the limit.
  CHECK_THROWS_WITH(read_input_file("/dev/zero", 1 << 20, "load file"),
                    Catch::Contains("the load file is larger than the limit of 1 MiB (it does not end within the limit)"));
  CHECK_THROWS_WITH(read_input_file(dir.path().string(), 100, "result file"),
                    Catch::Contains("expected a result file, got a directory"));
  CHECK_THROWS_WITH(read_input_file(dir.file("none"), 100, "result file"),
                    Catch::Contains("cannot open the result file: No such file or directory"));
}

TEST_CASE("LineReader bounds each line and strips CRLF", "[input][lines]") {
  TempDir dir;
  const std::string path = dir.file("t.jsonl");
  write_text(path, "a\r\n\nb\n" + std::string(kMaxLineBytes + 1, 'x') + "\n");
  LineReader in(path, "trace file");
  std::string line;
  REQUIRE(in.next(line));
  CHECK(line == "a");
  REQUIRE(in.next(line));
  CHECK(line.empty());
  REQUIRE(in.next(line));
  CHECK((line == "b" && in.line_number() == 3));
  try {
    in.next(line);
    FAIL("no error for an over-long line");
  } catch (const InputError& e) {
    CHECK(e.where() == "line 4");
    CHECK(e.message() == "line longer than the limit of 1048576 bytes (one record per line expected)");
  }
  LineReader zero("/dev/zero", "trace file");
  CHECK_THROWS_WITH(zero.next(line), Catch::Contains("line 1: line longer than the limit"));
  write_text(path, "last line without newline");
  LineReader tail(path, "trace file");
  CHECK((tail.next(line) && line == "last line without newline"));
  CHECK_FALSE(tail.next(line));
}

TEST_CASE("finite checks name the field and find the first bad value", "[input][finite]") {
  CHECK(finite_number(2.5, 0, 10, "f", "line 3", "w") == 2.5);
  CHECK_THROWS_WITH(finite_number(-1, 0, 10, "f", "line 3", "\"w\"/0"),
                    "f: line 3: \"w\"/0: expected a finite number in [0, 10], got -1");
  CHECK_THROWS_WITH(finite_number(std::nan(""), 0, 10, "f", "/x", "x"), Catch::Contains("got nan"));
  std::vector<float> v(3000, 1.0f);
  CHECK(first_out_of_range(v, 10.0f) == 3000);
  v[2500] = std::numeric_limits<float>::quiet_NaN();
  v[2700] = std::numeric_limits<float>::infinity();
  CHECK(first_out_of_range(v, 10.0f) == 2500);
  v[17] = -11.0f;
  CHECK(first_out_of_range(v, 10.0f) == 17);
  CHECK(first_out_of_range({}, 1.0f) == 0);
}

TEST_CASE("messages stay on one line and are bounded", "[input][message]") {
  CHECK(one_line("a\nmoesim: error: forged\t\x1b[31m\\x") == "a\\nmoesim: error: forged\\t\\x1b[31m\\x");
  CHECK(one_line(one_line("a\n")) == "a\\n");  // idempotent
  CHECK(one_line(std::string(100, 'x'), 10) == "xxxxxxx...");
  CHECK(excerpt(std::string(1000, 'k')).size() == 60);
  const InputError e("f\n.json", "/a\nb", "bad\rvalue");
  CHECK(std::string(e.what()) == "f\\n.json: /a\\nb: bad\\rvalue");
}

TEST_CASE("file fingerprints follow the content", "[input][fingerprint]") {
  TempDir dir;
  const std::string path = dir.file("trace.jsonl");
  write_text(path, "");
  CHECK(fingerprint_file(path) == std::pair<std::int64_t, std::string>{0, "fnv1a64:cbf29ce484222325"});
  write_text(path, "a");  // FNV-1a 64 of "a" (the published test vector)
  CHECK(fingerprint_file(path) == std::pair<std::int64_t, std::string>{1, "fnv1a64:af63dc4c8601ec8c"});
  write_text(path, "b");  // same size, new content (mtime differs or the inode key does)
  std::filesystem::last_write_time(path, std::filesystem::last_write_time(path) + std::chrono::seconds(2));
  CHECK(fingerprint_file(path).second == "fnv1a64:af63df4c8601f1a5");
  CHECK_THROWS_AS(fingerprint_file(dir.file("none")), InputError);
}
