// Multi-layer routing records: the pairs format, NPY expert ids, loads files
// (hand-made files and the real data in ../shared/data).
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <numeric>

#include "moesim/error.hpp"
#include "moesim/routing_trace.hpp"
#include "testing/fixtures.hpp"

namespace moesim {
namespace {

using testing::TempDir;
using testing::write_text;

std::string error_of(const std::string& path, const std::string& format = "pairs") {
  try {
    if (format == "loads") read_layer_loads(path);
    else read_routing_trace(path, format);
  } catch (const InputError& e) {
    return e.where() + ": " + e.message();
  }
  return "no error";
}

// A raw NPY v1.0 file of int32 or int64 values with the given shape.
template <class Int>
void write_npy_ints(const std::string& path, const std::string& shape, const std::vector<Int>& v) {
  std::string header = "{'descr': '<i" + std::to_string(sizeof(Int)) + "', 'fortran_order': False, 'shape': " + shape +
                       ", }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const auto len = std::uint16_t(header.size());
  out.put(char(len & 0xff)).put(char(len >> 8));
  out << header;
  out.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(Int)));
}

TEST_CASE("pairs trace: layers sorted, rank order kept, dense layers absent", "[trace][layers]") {
  TempDir dir;
  // Two MoE layers with ids 3 and 1 (layer 2 is dense), k = 2, listed out of order on the second line.
  write_text(dir.file("t.jsonl"), "[[1, 4], [1, 0], [3, 2], [3, 5]]\n\n[[3, 1], [1, 2], [3, 0], [1, 3]]\r\n");
  const RoutingTrace t = read_pairs_trace(dir.file("t.jsonl"));
  CHECK(t.layer_ids == std::vector<int>{1, 3});
  CHECK(t.top_k == 2);
  CHECK(t.experts == 6);  // 1 + the largest id seen
  CHECK(t.tokens() == 2);
  CHECK(t.expert == std::vector<std::int32_t>{4, 0, 2, 5, /*token 1*/ 2, 3, 1, 0});
  CHECK(t.at(1, 1)[0] == 1);

  std::string line;
  append_pairs_line(line, t.layer_ids, t.at(1, 0), t.top_k);
  CHECK(line == "[[1, 2], [1, 3], [3, 1], [3, 0]]\n");
  CHECK(read_pairs_trace(dir.file("t.jsonl"), 1).tokens() == 1);
}

TEST_CASE("pairs trace: every malformed line names its line", "[trace][layers]") {
  TempDir dir;
  auto check = [&](const std::string& text, const std::string& expected) {
    write_text(dir.file("bad.jsonl"), text);
    CHECK(error_of(dir.file("bad.jsonl")) == expected);
  };
  const std::string ok = "[[0, 1], [0, 2], [1, 3], [1, 0]]\n";
  check(ok + "[[0, 1], [0, 2], [1, 3]]\n", "line 2: expected 4 pairs (2 layers × k = 2), got 3");
  check(ok + "[[0, 1], [0, 1], [1, 3], [1, 0]]\n", "line 2, layer 0: expert 1 is chosen twice");
  check(ok + "[[0, 1], [0, 2], [2, 3], [2, 0]]\n",
        "line 2: expected layers 0, 1 with 2 experts each, as on the first token; got layer 2 where layer 1 was due");
  check(ok + "[[0, -1], [0, 2], [1, 3], [1, 0]]\n",
        "line 2, column 6: expected a non-negative integer expert id (expected a JSON array of [layer, expert] "
        "integer pairs)");
  check("{\"a\": 1}\n", "line 1, column 1: expected '[' (expected a JSON array of [layer, expert] integer pairs)");
  check(ok + "[[0, 1], [0, 2], [1, 3], [1, 0]] x\n",
        "line 2, column 34: unexpected text after the array (expected a JSON array of [layer, expert] integer pairs)");
  check("[[0, 99999999999], [0, 2]]\n",
        "line 1, column 6: expert id is larger than 1048576 (expected a JSON array of [layer, expert] integer pairs)");
  check("[[0, 1], [0, 2], [1, 3]]\n", "line 1: every layer must list the same number k of experts");
  check("\n\n", ": the trace holds no token (expected one JSON array per line)");
  CHECK(error_of(dir.file("missing.jsonl")) == ": cannot open the trace file: No such file or directory");
}

TEST_CASE("NPY expert ids: [T, k] is one layer, [T, L, k] many", "[trace][layers][npy]") {
  TempDir dir;
  write_npy_ints<std::int32_t>(dir.file("a.npy"), "(2, 2, 3)", {0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0});
  RoutingTrace t = read_routing_trace(dir.file("a.npy"), "npy");
  CHECK(t.layer_ids == std::vector<int>{0, 1});
  CHECK(t.top_k == 3);
  CHECK(t.experts == 6);
  CHECK(t.tokens() == 2);
  CHECK(t.at(1, 0)[0] == 5);
  CHECK(t.at(1, 1)[2] == 0);

  write_npy_ints<std::int64_t>(dir.file("b.npy"), "(3, 2)", {7, 1, 0, 2, 3, 4});
  t = read_routing_trace(dir.file("b.npy"), "npy");
  CHECK(t.layer_ids == std::vector<int>{0});
  CHECK(t.experts == 8);
  CHECK(t.tokens() == 3);

  write_npy_ints<std::int32_t>(dir.file("dup.npy"), "(2, 2)", {0, 1, 3, 3});
  CHECK(error_of(dir.file("dup.npy"), "npy") == "index [1]: expert 3 is chosen twice");
  write_npy_ints<std::int32_t>(dir.file("neg.npy"), "(1, 2, 2)", {0, 1, 3, -2});
  CHECK(error_of(dir.file("neg.npy"), "npy") == "index [0, 3]: expert id -2 is outside [0, 1048576)");
}

TEST_CASE("loads files: plain matrices and SGLang logical_count", "[loads][layers]") {
  TempDir dir;
  write_text(dir.file("plain.json"), "[[1, 2, 3], [0, 0, 0]]");
  LayerLoads l = read_layer_loads(dir.file("plain.json"));
  CHECK(l.layer_ids == std::vector<int>{0, 1});  // a plain matrix keeps all-zero layers
  write_text(dir.file("flat.json"), "[4, 5]");
  CHECK(read_layer_loads(dir.file("flat.json")).load == std::vector<std::vector<double>>{{4, 5}});
  write_text(dir.file("sglang.json"), "{\"logical_count\": [[0, 0], [1.5, 2], [0, 0], [0, 7]]}");
  l = read_layer_loads(dir.file("sglang.json"));
  CHECK(l.layer_ids == std::vector<int>{1, 3});
  CHECK(l.load == std::vector<std::vector<double>>{{1.5, 2}, {0, 7}});

  auto check = [&](const std::string& text, const std::string& expected) {
    write_text(dir.file("bad.json"), text);
    CHECK(error_of(dir.file("bad.json"), "loads") == expected);
  };
  check("{\"logical_count\": [[1, 2], [3]]}", "/logical_count/1: expected an array of 2 per-expert loads (as in layer 0)");
  check("[[1, -2]]", "/0/1: load: expected a finite number in [0, 1e+30], got -2");
  check("[[1, 1e305]]", "/0/1: load: expected a finite number in [0, 1e+30], got 1e+305");
  check("[[1, \"x\"]]", "/0/1: expected a number in [0, 1e+30], got string");
  check("{\"counts\": []}",
        "/: expected an object with the single key \"logical_count\" (SGLang's expert_distribution_recorder), or "
        "an array of layers");
  check("{\"logical_count\": [[0, 0]]}", "/logical_count: every layer is all-zero: no MoE layer to read");
}

TEST_CASE("real data: the OLMoE trace and a DeepSeek-V3 SGLang loads file", "[trace][loads][layers][data]") {
  const std::string data = MOESIM_SOURCE_DIR "/../shared/data/";
  const RoutingTrace t = read_pairs_trace(data + "traces/olmoe-all.tokens.jsonl");
  CHECK(t.layers() == 16);
  CHECK(t.layer_ids.front() == 0);
  CHECK(t.top_k == 8);
  CHECK(t.experts == 64);
  CHECK(t.tokens() == 897);
  const LayerLoads l = read_layer_loads(data + "loads/deepseek-v3/prefill_in1024.json");
  CHECK(l.layers() == 58);  // 61 layers, the first 3 dense
  CHECK(l.layer_ids.front() == 3);
  CHECK(l.layer_ids.back() == 60);
  CHECK(l.experts() == 256);
  // Every MoE layer counts the same tokens × k assignments.
  const double first = std::accumulate(l.load[0].begin(), l.load[0].end(), 0.0);
  for (const auto& row : l.load) CHECK(std::accumulate(row.begin(), row.end(), 0.0) == Approx(first).epsilon(1e-9));
}

}  // namespace
}  // namespace moesim
