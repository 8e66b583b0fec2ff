// JsonlTraceReader on small files in a temp directory, well-formed and not.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "moesim/error.hpp"
#include "moesim/trace_io.hpp"

namespace moesim {
namespace {

namespace fs = std::filesystem;

std::string write_trace(const std::string& name, const std::string& text) {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("moesim_jsonl_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return path;
}

std::string line(int step, int seq, const std::string& experts, const std::string& weights) {
  return "{\"step\":" + std::to_string(step) + ",\"seq\":" + std::to_string(seq) +
         ",\"topk_experts\":" + experts + ",\"topk_weights\":" + weights + "}\n";
}

// E=4, k=2, B=2, L=2 (T=4): two full steps.
std::string two_steps() {
  return line(0, 0, "[1,3]", "[0.5,0.25]") + line(0, 0, "[0,2]", "[0.75,0.125]") +
         line(0, 1, "[3,2]", "[0.5,0.5]") + line(0, 1, "[2,1]", "[0.625,0.375]") +
         line(1, 0, "[0,1]", "[1,0]") + line(1, 0, "[1,0]", "[0.5,0.5]") +
         line(1, 1, "[2,3]", "[0.25,0.75]") + line(1, 1, "[3,0]", "[0.875,0.125]");
}

struct Failure {
  std::string where, message;
};

// The InputError of reading every step of `text` with E=4, k=2, B=2, L=2.
Failure read_error(const std::string& name, const std::string& text) {
  const std::string path = write_trace(name, text);
  std::vector<std::int32_t> expert(8);
  std::vector<float> gate(8);
  try {
    JsonlTraceReader r = JsonlTraceReader::open(path, 4, 2, 2, 2);
    while (r.read_step(expert, gate)) {
    }
  } catch (const InputError& e) {
    CHECK(e.file() == path);
    return {e.where(), e.message()};
  }
  return {"", ""};
}

const std::string kKeys = "\"step\", \"seq\", \"topk_experts\", \"topk_weights\"";

}  // namespace

TEST_CASE("JSONL trace: steps are read in token order, in rank order", "[trace][jsonl]") {
  JsonlTraceReader r = JsonlTraceReader::open(write_trace("ok.jsonl", two_steps()), 4, 2, 2, 2);
  std::vector<std::int32_t> expert(8, -7);
  std::vector<float> gate(8, -7.f);
  REQUIRE(r.read_step(expert, gate));
  CHECK(expert == std::vector<std::int32_t>{1, 3, 0, 2, 3, 2, 2, 1});
  CHECK(gate == std::vector<float>{0.5f, 0.25f, 0.75f, 0.125f, 0.5f, 0.5f, 0.625f, 0.375f});
  CHECK(r.next_step() == 1);
  REQUIRE(r.read_step(expert, gate));
  CHECK(expert == std::vector<std::int32_t>{0, 1, 1, 0, 2, 3, 3, 0});
  CHECK(gate == std::vector<float>{1.f, 0.f, 0.5f, 0.5f, 0.25f, 0.75f, 0.875f, 0.125f});
  CHECK_FALSE(r.read_step(expert, gate));
  CHECK(r.next_step() == 2);
  std::vector<float> short_gate(7);
  CHECK_THROWS_AS(r.read_step(expert, short_gate), std::invalid_argument);
}

TEST_CASE("JSONL trace: blank lines and CRLF endings are accepted", "[trace][jsonl]") {
  std::string text = "\n" + two_steps() + "\n\n";
  std::string crlf;
  for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  const TraceScan scan = JsonlTraceReader::scan(write_trace("crlf.jsonl", crlf), 4, 2, 2, 2);
  CHECK(scan.steps == 2);
  CHECK(scan.tokens == 8);
}

TEST_CASE("JSONL trace: scan counts complete steps and tokens", "[trace][jsonl]") {
  const std::string full = two_steps();
  // Keep the first 6 lines: one full step and half of the next.
  std::size_t cut = 0;
  for (int i = 0; i < 6; ++i) cut = full.find('\n', cut) + 1;
  TraceScan scan = JsonlTraceReader::scan(write_trace("part.jsonl", full.substr(0, cut)), 4, 2, 2, 2);
  CHECK(scan.steps == 1);
  CHECK(scan.tokens == 6);
  scan = JsonlTraceReader::scan(write_trace("empty.jsonl", ""), 4, 2, 2, 2);
  CHECK(scan.steps == 0);
  CHECK(scan.tokens == 0);
  // Reading that step fails where the file ends.
  const Failure f = read_error("part2.jsonl", full.substr(0, cut));
  CHECK(f.where == "line 7");
  CHECK(f.message ==
        "the file ends inside step 1: expected 4 tokens (sequences × seq_len = 2 × 2), found 2");
  // scan validates every line too.
  CHECK_THROWS_AS(JsonlTraceReader::scan(write_trace("bad.jsonl", full + "{\n"), 4, 2, 2, 2),
                  InputError);
}

TEST_CASE("JSONL trace: malformed lines name the line and what was expected", "[trace][jsonl]") {
  const std::string l1 = line(0, 0, "[1,3]", "[0.5,0.25]");
  Failure f = read_error("json.jsonl", l1 + "{\"step\":0,\n");
  CHECK(f.where == "line 2");
  CHECK(f.message.find("invalid JSON at byte") == 0);

  f = read_error("array.jsonl", "[1,2]\n");
  CHECK(f.where == "line 1");
  CHECK(f.message == "expected a JSON object with keys " + kKeys + ", got array");

  f = read_error("missing.jsonl", "{\"step\":0,\"seq\":0,\"topk_experts\":[1,2]}\n");
  CHECK(f.message == "missing key \"topk_weights\": every line needs " + kKeys);

  f = read_error("unknown.jsonl",
                 "{\"step\":0,\"seq\":0,\"topk_experts\":[1,2],\"topk_weights\":[1,1],\"x\":1}\n");
  CHECK(f.message == "unknown key \"x\": valid keys are " + kKeys);

  f = read_error("k.jsonl", l1 + line(0, 0, "[1,2,3]", "[1,1,1]"));
  CHECK(f.where == "line 2");
  CHECK(f.message == "expected \"topk_experts\" to be an array of k = 2 expert indices, got 3 entries");

  f = read_error("kw.jsonl", line(0, 0, "[1,2]", "[1]"));
  CHECK(f.message == "expected \"topk_weights\" to be an array of k = 2 numbers, got 1 entries");

  f = read_error("range.jsonl", line(0, 0, "[1,4]", "[1,1]"));
  CHECK(f.message == "expert 4 out of range: expected integers 0 <= expert < 4 (model.experts)");
  f = read_error("neg.jsonl", line(0, 0, "[-1,2]", "[1,1]"));
  CHECK(f.message == "expert -1 out of range: expected integers 0 <= expert < 4 (model.experts)");
  f = read_error("fexp.jsonl", line(0, 0, "[1.5,2]", "[1,1]"));
  CHECK(f.message == "expert 1.5 out of range: expected integers 0 <= expert < 4 (model.experts)");

  f = read_error("dup.jsonl", line(0, 0, "[2,2]", "[1,1]"));
  CHECK(f.message == "expert 2 listed twice: a token picks k distinct experts");

  f = read_error("inf.jsonl", line(0, 0, "[1,2]", "[1,1e39]"));  // finite double, not float32
  CHECK(f.message == "\"topk_weights\"/1: expected a finite number in [0, 1e+06], got 1e+39");
  f = read_error("str.jsonl", line(0, 0, "[1,2]", "[\"a\",1]"));
  CHECK(f.message == "expected weight 0 to be a number, got \"a\"");

  f = read_error("stepf.jsonl", "{\"step\":0.0,\"seq\":0,\"topk_experts\":[1,2],\"topk_weights\":[1,1]}\n");
  CHECK(f.message == "expected \"step\" to be a non-negative integer, got 0.0");
  f = read_error("seqneg.jsonl", "{\"step\":0,\"seq\":-1,\"topk_experts\":[1,2],\"topk_weights\":[1,1]}\n");
  CHECK(f.message == "expected \"seq\" to be a non-negative integer, got -1");
}

TEST_CASE("JSONL trace: steps and sequences must come in order", "[trace][jsonl]") {
  Failure f = read_error("step1.jsonl", line(1, 0, "[1,2]", "[1,1]"));
  CHECK(f.where == "line 1");
  CHECK(f.message ==
        "expected \"step\": 0 (steps count from 0 and increase by one; step 0 has 0 of its 4 tokens "
        "so far), got 1");
  // Step 0 cut short: its third token claims step 1.
  f = read_error("early.jsonl", line(0, 0, "[1,2]", "[1,1]") + line(0, 0, "[1,2]", "[1,1]") +
                                    line(1, 0, "[1,2]", "[1,1]"));
  CHECK(f.where == "line 3");
  CHECK(f.message ==
        "expected \"step\": 0 (steps count from 0 and increase by one; step 0 has 2 of its 4 tokens "
        "so far), got 1");
  // Sequence 1 starts before sequence 0 has its L = 2 tokens.
  f = read_error("seq.jsonl", line(0, 0, "[1,2]", "[1,1]") + line(0, 1, "[1,2]", "[1,1]"));
  CHECK(f.where == "line 2");
  CHECK(f.message ==
        "expected \"seq\": 0 (token 1 of step 0; sequences 0..1 follow in order, each with seq_len "
        "= 2 lines), got 1");
  // Sequence 0 runs one token too long.
  f = read_error("seq2.jsonl", line(0, 0, "[1,2]", "[1,1]") + line(0, 0, "[1,2]", "[1,1]") +
                                   line(0, 0, "[1,2]", "[1,1]"));
  CHECK(f.where == "line 3");
  CHECK(f.message.find("expected \"seq\": 1 (token 2 of step 0;") == 0);
  // Steps repeat after a full step 0.
  f = read_error("repeat.jsonl", two_steps().substr(0, two_steps().find("{\"step\":1")) +
                                     line(0, 0, "[1,2]", "[1,1]"));
  CHECK(f.where == "line 5");
  CHECK(f.message.find("expected \"step\": 1 (") == 0);
}

TEST_CASE("JSONL trace: an unreadable file is an input error", "[trace][jsonl]") {
  try {
    JsonlTraceReader::open("/nonexistent/trace.jsonl", 4, 2, 2, 2);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(e.file() == "/nonexistent/trace.jsonl");
    CHECK(e.message().find("cannot open the trace file: ") == 0);
  }
}

TEST_CASE("JSONL trace: fuzzer regression, a number too large for a double", "[trace][jsonl][fuzz]") {
  // Once escaped as nlohmann's out_of_range instead of an InputError.
  const std::string path = write_trace("overflow.jsonl", R"({"ste":[0.666666666E66666664,0.2]})" "\n");
  CHECK_THROWS_WITH(JsonlTraceReader::scan(path, 4, 2, 1, 2), Catch::Contains("line 1, at /ste/0: a number is out of range"));
}

}  // namespace moesim
