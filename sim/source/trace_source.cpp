// Trace replay (MODEL.md §1, §9; FORMATS.md): router logits as NPY float32
// [T, E] or [T, L, E], which go through the score function, bias, routing
// limits and droppers like any other logits; or fixed choices — NPY integer
// expert ids [T, k] or [T, L, k], `pairs` JSONL of [layer, expert] pairs, or
// single-layer JSONL top-k records with gate weights.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "moesim/components.hpp"
#include "moesim/error.hpp"
#include "moesim/routing_trace.hpp"
#include "moesim/trace_io.hpp"
#include "trace_shape.hpp"

namespace moesim {
namespace {

class TraceSource final : public TokenSource {
 public:
  TraceSource(const Params& p, const Shape& s) : shape_(s), path_(p.str("path")), format_(p.str("format")) {
    const TraceShape found = peek_trace_shape(path_, format_);
    check_trace_shape(found, s, path_);
    kind_ = found.kind;
  }

  SourceOutput output() const override {
    return kind_ == TraceShape::logits ? SourceOutput::logits : SourceOutput::choices;
  }

  void seed(std::uint64_t) override {  // replay is deterministic by construction; (re)open from the start
    if (format_ == "jsonl")
      jsonl_reader_.emplace(JsonlTraceReader::open(path_, shape_.experts, shape_.top_k, shape_.sequences,
                                                   shape_.seq_len));
    else if (kind_ == TraceShape::logits)
      npy_reader_.emplace(NpyReader::open(path_));
    else if (!choices_)  // held whole: read once, shared by the layers and steps
      choices_ = std::make_shared<const RoutingTrace>(read_routing_trace(path_, format_));
  }

  void next(int step, int layer, StepData& data) override {
    if (layer == 0) std::fill(data.domain.begin(), data.domain.end(), -1);
    const int T = shape_.tokens(), k = shape_.top_k;
    const std::int64_t first = std::int64_t(step) * T;
    if (format_ == "jsonl") {
      jsonl_reader_->read_step(data.expert, data.gate);
      // No scores in a top-k trace: droppers that rank by affinity use the gate.
      std::copy(data.gate.begin(), data.gate.end(), data.affinity.begin());
    } else if (kind_ == TraceShape::logits) {
      read_logits(first, layer, data);
    } else {
      // Choices without weights: equal gates 1/k (droppers then break ties by token).
      const float g = float(1.0 / k);
      for (int t = 0; t < T; ++t) std::copy_n(choices_->at(first + t, layer), k, &data.expert[std::size_t(t) * k]);
      std::fill(data.gate.begin(), data.gate.end(), g);
      std::fill(data.affinity.begin(), data.affinity.end(), g);
    }
  }

 private:
  // Rows are tokens; a [T, L, E] row holds every layer, so a layer is a
  // strided slice: read a block of rows, copy the layer's E columns out.
  void read_logits(std::int64_t first, int layer, StepData& data) {
    const int T = shape_.tokens(), E = shape_.experts, L = shape_.layers;
    if (L == 1) {
      npy_reader_->read_rows(first, T, data.z.data());
      return;
    }
    constexpr int kBlock = 256;
    block_.resize(std::size_t(kBlock) * L * E);
    for (int t0 = 0; t0 < T; t0 += kBlock) {
      const int n = std::min(kBlock, T - t0);
      npy_reader_->read_rows(first + t0, n, block_.data());
      for (int i = 0; i < n; ++i)
        std::copy_n(&block_[(std::size_t(i) * L + layer) * E], E, &data.z[std::size_t(t0 + i) * E]);
    }
  }

  Shape shape_;
  std::string path_, format_;
  TraceShape::Kind kind_ = TraceShape::logits;
  std::optional<NpyReader> npy_reader_;
  std::optional<JsonlTraceReader> jsonl_reader_;
  std::shared_ptr<const RoutingTrace> choices_;
  std::vector<float> block_;
};

const Registration<TokenSource> registration{{
    "trace",
    "replay a trace: NPY logits [T, (L,) E] or expert ids [T, (L,) k], pairs JSONL of [layer, expert], or JSONL "
    "top-k records; inference only",
    {
        ParamSpec::file("path", "the trace file"),
        ParamSpec::choice("format", {"npy", "jsonl", "pairs"},
                          "npy: float32 logits or integer expert ids; jsonl: one token's top-k and gates per line; "
                          "pairs: one token's [layer, expert] pairs per line"),
    },
    make<TokenSource, TraceSource>,
}};

}  // namespace
}  // namespace moesim
