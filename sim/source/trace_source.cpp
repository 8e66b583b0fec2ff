// Trace replay (MODEL.md §1, FORMATS.md): NPY float32 router logits
// [steps·T, E] in token order, or JSONL top-k records. Logits go through the
// score function, bias, routing limits and droppers like any other; JSONL
// records fix the choices and gates themselves.
#include <fmt/format.h>

#include <optional>

#include "moesim/components.hpp"
#include "moesim/error.hpp"
#include "moesim/trace_io.hpp"

namespace moesim {
namespace {

class TraceSource final : public TokenSource {
 public:
  TraceSource(const Params& p, const Shape& s) : shape_(s), path_(p.str("path")), jsonl_(p.str("format") == "jsonl") {
    const std::int64_t needed = std::int64_t(s.steps) * s.tokens();
    if (jsonl_) {
      const TraceScan scan = JsonlTraceReader::scan(path_, s.experts, s.top_k, s.sequences, s.seq_len);
      if (scan.steps < s.steps)
        throw InputError(path_, "", fmt::format("the trace holds {} complete steps of {} tokens, the scenario runs {}",
                                                scan.steps, s.tokens(), s.steps));
    } else {
      NpyReader npy = NpyReader::open(path_);
      if (npy.cols() != s.experts)
        throw InputError(path_, "", fmt::format("expected {} columns (one logit per expert), got {}", s.experts, npy.cols()));
      if (npy.rows() < needed)
        throw InputError(path_, "", fmt::format("expected at least steps × tokens = {} × {} = {} rows, got {}", s.steps,
                                                s.tokens(), needed, npy.rows()));
      npy.check_values(needed);  // like the JSONL scan: validate sees every value the run reads
    }
  }

  SourceOutput output() const override { return jsonl_ ? SourceOutput::choices : SourceOutput::logits; }

  void seed(std::uint64_t) override {  // replay is deterministic by construction; (re)open from the start
    if (jsonl_) jsonl_reader_.emplace(JsonlTraceReader::open(path_, shape_.experts, shape_.top_k, shape_.sequences, shape_.seq_len));
    else npy_reader_.emplace(NpyReader::open(path_));
  }

  void next(int step, StepData& data) override {
    std::fill(data.domain.begin(), data.domain.end(), -1);
    if (jsonl_) {
      jsonl_reader_->read_step(data.expert, data.gate);
      // No scores in a top-k trace: droppers that rank by affinity use the gate.
      std::copy(data.gate.begin(), data.gate.end(), data.affinity.begin());
    } else {
      npy_reader_->read_rows(std::int64_t(step) * shape_.tokens(), shape_.tokens(), data.z.data());
    }
  }

 private:
  Shape shape_;
  std::string path_;
  bool jsonl_;
  std::optional<NpyReader> npy_reader_;
  std::optional<JsonlTraceReader> jsonl_reader_;
};

const Registration<TokenSource> registration{{
    "trace",
    "replay a trace: NPY float32 router logits [steps·T, E] or JSONL top-k records; inference only",
    {
        ParamSpec::file("path", "the trace file"),
        ParamSpec::choice("format", {"npy", "jsonl"}, "npy: router logits; jsonl: one token's top-k per line"),
    },
    make<TokenSource, TraceSource>,
}};

}  // namespace
}  // namespace moesim
