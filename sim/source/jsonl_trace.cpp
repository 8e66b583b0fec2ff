// JSONL top-k trace reader (MODEL.md §1 "trace"; FORMATS.md "Trace replay"):
// one token per line, {"step":s,"seq":n,"topk_experts":[...],"topk_weights":[...]}.
// Replay must reproduce the trace's choices exactly, so every line is checked
// and nothing is repaired: a bad line is an InputError naming "line N".
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moesim/error.hpp"
#include "moesim/trace_io.hpp"

namespace moesim {
namespace {

constexpr char kKeys[] = "\"step\", \"seq\", \"topk_experts\", \"topk_weights\"";

bool blank(const std::string& s) {
  return s.find_first_not_of(" \t\r") == std::string::npos;
}

}  // namespace

JsonlTraceReader JsonlTraceReader::open(const std::string& path, int experts, int top_k,
                                        int sequences, int seq_len) {
  if (experts < 1 || top_k < 1 || top_k > experts || sequences < 1 || seq_len < 1)
    throw std::invalid_argument("JsonlTraceReader: need 1 <= k <= E, B >= 1, L >= 1");
  JsonlTraceReader r;
  r.path_ = path;
  r.in_ = LineReader(path, "trace file");
  r.experts_ = experts;
  r.top_k_ = top_k;
  r.sequences_ = sequences;
  r.seq_len_ = seq_len;
  return r;
}

bool JsonlTraceReader::read_token(std::int64_t index, std::int32_t* expert, float* gate) {
  do {
    if (!in_.next(line_)) return false;
  } while (blank(line_));
  const std::string where = fmt::format("line {}", in_.line_number());
  auto fail = [&](const std::string& message) -> void { throw InputError(path_, where, message); };

  JsonParseOptions options;
  options.where = where;
  const nlohmann::json j = parse_json_bounded(line_, path_, options);
  if (!j.is_object()) fail(fmt::format("expected a JSON object with keys {}, got {}", kKeys, j.type_name()));
  for (const auto& [key, value] : j.items())
    if (key != "step" && key != "seq" && key != "topk_experts" && key != "topk_weights")
      fail(fmt::format("unknown key \"{}\": valid keys are {}", excerpt(key), kKeys));
  for (const char* key : {"step", "seq", "topk_experts", "topk_weights"})
    if (!j.contains(key)) fail(fmt::format("missing key \"{}\": every line needs {}", key, kKeys));

  auto integer = [&](const char* key) -> std::int64_t {
    const auto& v = j[key];
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() >
                                                                 std::uint64_t(std::numeric_limits<std::int64_t>::max())))
      fail(fmt::format("expected \"{}\" to be a non-negative integer, got {}", key, excerpt(v.dump())));
    const auto n = v.get<std::int64_t>();
    if (n < 0) fail(fmt::format("expected \"{}\" to be a non-negative integer, got {}", key, n));
    return n;
  };
  const std::int64_t step = integer("step"), seq = integer("seq");
  const std::int64_t T = std::int64_t(sequences_) * seq_len_;
  if (step != step_)
    fail(fmt::format("expected \"step\": {} (steps count from 0 and increase by one; step {} has {} "
                     "of its {} tokens so far), got {}",
                     step_, step_, index, T, step));
  const std::int64_t want_seq = index / seq_len_;
  if (seq != want_seq)
    fail(fmt::format("expected \"seq\": {} (token {} of step {}; sequences 0..{} follow in order, "
                     "each with seq_len = {} lines), got {}",
                     want_seq, index, step_, sequences_ - 1, seq_len_, seq));

  const auto& ex = j["topk_experts"];
  const auto& w = j["topk_weights"];
  if (!ex.is_array() || ex.size() != std::size_t(top_k_))
    fail(fmt::format("expected \"topk_experts\" to be an array of k = {} expert indices, got {}",
                     top_k_, ex.is_array() ? fmt::format("{} entries", ex.size()) : excerpt(ex.dump())));
  if (!w.is_array() || w.size() != std::size_t(top_k_))
    fail(fmt::format("expected \"topk_weights\" to be an array of k = {} numbers, got {}", top_k_,
                     w.is_array() ? fmt::format("{} entries", w.size()) : excerpt(w.dump())));
  for (int i = 0; i < top_k_; ++i) {
    const auto& e = ex[std::size_t(i)];
    if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() >= experts_ ||
        (e.is_number_unsigned() && e.get<std::uint64_t>() >= std::uint64_t(experts_)))
      fail(fmt::format("expert {} out of range: expected integers 0 <= expert < {} (model.experts)",
                       excerpt(e.dump()), experts_));
    expert[i] = static_cast<std::int32_t>(e.get<std::int64_t>());
    for (int p = 0; p < i; ++p)
      if (expert[p] == expert[i])
        fail(fmt::format("expert {} listed twice: a token picks k distinct experts", expert[i]));
    const auto& g = w[std::size_t(i)];
    if (!g.is_number()) fail(fmt::format("expected weight {} to be a number, got {}", i, excerpt(g.dump())));
    // A gate weight scales the expert's output: negative or huge ones are
    // not a router's (they overflowed the sums downstream).
    gate[i] = float(finite_number(g.get<double>(), 0.0, kMaxGateWeight, path_, where,
                                  fmt::format("\"topk_weights\"/{}", i)));
  }
  return true;
}

bool JsonlTraceReader::read_step(std::span<std::int32_t> expert, std::span<float> gate) {
  const std::int64_t T = std::int64_t(sequences_) * seq_len_;
  const auto n = static_cast<std::size_t>(T * top_k_);
  if (expert.size() != n || gate.size() != n)
    throw std::invalid_argument("JsonlTraceReader::read_step: expert and gate must hold T*k entries");
  for (std::int64_t t = 0; t < T; ++t) {
    if (!read_token(t, expert.data() + t * top_k_, gate.data() + t * top_k_)) {
      if (t == 0) return false;
      throw InputError(path_, fmt::format("line {}", in_.line_number() + 1),
                       fmt::format("the file ends inside step {}: expected {} tokens "
                                   "(sequences × seq_len = {} × {}), found {}",
                                   step_, T, sequences_, seq_len_, t));
    }
  }
  ++step_;
  return true;
}

TraceScan JsonlTraceReader::scan(const std::string& path, int experts, int top_k, int sequences,
                                 int seq_len) {
  JsonlTraceReader r = open(path, experts, top_k, sequences, seq_len);
  const std::int64_t T = std::int64_t(sequences) * seq_len;
  std::vector<std::int32_t> expert(static_cast<std::size_t>(top_k));
  std::vector<float> gate(static_cast<std::size_t>(top_k));
  TraceScan out;
  for (std::int64_t t = 0;; ++t) {
    if (t == T) {
      t = 0;
      ++r.step_;
      ++out.steps;
    }
    if (!r.read_token(t, expert.data(), gate.data())) break;
    ++out.tokens;
  }
  return out;
}

}  // namespace moesim
