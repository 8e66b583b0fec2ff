// libFuzzer target: any bytes given as an NPY or JSONL trace, or as a serving
// arrival trace, either read or raise InputError; anything else (a crash,
// another exception) is a bug.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "moesim/error.hpp"
#include "moesim/trace_io.hpp"
#include "scenario/serve_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1 << 16) return 0;
  static const std::string path = "/tmp/moesim-trace-fuzz-" + std::to_string(::getpid());
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {  // as NPY logits (float32) or expert ids (integers), read as the trace sources do
    auto npy = moesim::NpyReader::open(path);
    if (npy.rows() > 0 && npy.cols() > 0 && npy.cols() <= 4096) {
      if (npy.is_float()) {
        std::vector<float> row(std::size_t(npy.cols()));
        npy.read_rows(0, 1, row.data());
      } else {  // read_rows on integers is a caller's bug (logic_error), which no reader commits
        std::vector<std::int64_t> ids(std::size_t(npy.cols()));
        npy.read_ids(0, 1, ids.data());
      }
    }
  } catch (const moesim::InputError&) {
  }
  try {  // as a JSONL top-k trace of 4 experts, top-2, 1 sequence of 2 tokens
    moesim::JsonlTraceReader::scan(path, 4, 2, 1, 2);
    auto reader = moesim::JsonlTraceReader::open(path, 4, 2, 1, 2);
    std::vector<std::int32_t> expert(4);
    std::vector<float> gate(4);
    while (reader.read_step(expert, gate)) {
    }
  } catch (const moesim::InputError&) {
  }
  try {  // as a serving arrival trace (JSONL {"time", "prompt", "output"})
    (void)moesim::read_arrival_trace(path);
  } catch (const moesim::InputError&) {
  }
  return 0;
}
