// Readers and writer of multi-layer routing records (routing_trace.hpp).
// The pairs format is parsed by hand, not by a JSON library: a line is a flat
// list of integer pairs, so a small non-recursive scanner checks it exactly,
// names the line and column of any fault, and cannot be driven into deep
// recursion by a hostile file.
#include "moesim/routing_trace.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "moesim/error.hpp"
#include "moesim/input.hpp"
#include "moesim/trace_io.hpp"

namespace moesim {

namespace {

// Identifiers beyond these are typos or garbage, not models.
constexpr int kMaxLayerId = 1 << 20;
constexpr int kMaxExpertId = 1 << 20;
// A trace's choices are held whole for replay: 1 GiB of int32 ids at most.
constexpr std::int64_t kMaxChoiceBytes = std::int64_t(1) << 30;

// Scans one line of the pairs format: [[layer, expert], ...].
class PairsLine {
 public:
  PairsLine(const std::string& path, std::int64_t line_no, const std::string& s)
      : path_(path), line_no_(line_no), s_(s) {}

  void read(std::vector<std::pair<int, int>>& pairs) {
    pairs.clear();
    expect('[');
    if (peek(']')) fail("expected at least one [layer, expert] pair, got an empty array");
    while (true) {
      expect('[');
      const int layer = integer("layer id", kMaxLayerId);
      expect(',');
      const int expert = integer("expert id", kMaxExpertId);
      expect(']');
      pairs.emplace_back(layer, expert);
      if (peek(']')) break;
      expect(',');
    }
    expect(']');
    skip_space();
    if (i_ != s_.size()) fail("unexpected text after the array");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(path_, fmt::format("line {}, column {}", line_no_, i_ + 1),
                     what + " (expected a JSON array of [layer, expert] integer pairs)");
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool peek(char c) {
    skip_space();
    return i_ < s_.size() && s_[i_] == c;
  }
  void expect(char c) {
    if (!peek(c)) fail(i_ < s_.size() ? fmt::format("expected '{}'", c) : fmt::format("expected '{}', the line ended", c));
    ++i_;
  }
  int integer(const char* what, int max) {
    skip_space();
    const std::size_t start = i_;
    std::int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      v = v * 10 + (s_[i_++] - '0');
      if (v > max) {
        i_ = start;
        fail(fmt::format("{} is larger than {}", what, max));
      }
    }
    if (i_ == start) fail(fmt::format("expected a non-negative integer {}", what));
    return int(v);
  }

  const std::string& path_;
  std::int64_t line_no_;
  const std::string& s_;
  std::size_t i_ = 0;
};

// Checks a token's choices in one layer are k distinct ids (the readers
// check their range); `where` names the place, formatted only on an error.
template <class Where>
void check_distinct(const std::string& path, const Where& where, const std::int32_t* c, int k) {
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < j; ++i)
      if (c[i] == c[j]) throw InputError(path, where(), fmt::format("expert {} is chosen twice", c[j]));
}

}  // namespace

RoutingTrace read_pairs_trace(const std::string& path, std::int64_t max_tokens) {
  LineReader in(path, "trace file");  // bounded lines: a file without newlines cannot exhaust memory
  RoutingTrace t;
  std::string line;
  std::vector<std::pair<int, int>> pairs;
  std::vector<std::int32_t> row;  // L × k of the current token, by layer position
  std::int64_t line_no = 0;
  int max_expert = -1;
  while (in.next(line)) {
    line_no = in.line_number();
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    PairsLine(path, line_no, line).read(pairs);
    auto where = [&] { return fmt::format("line {}", line_no); };
    // Group by layer, keeping each layer's rank order.
    std::stable_sort(pairs.begin(), pairs.end(), [](auto& a, auto& b) { return a.first < b.first; });
    if (t.layer_ids.empty()) {  // the first token fixes the layers and k
      for (const auto& [l, e] : pairs)
        if (t.layer_ids.empty() || t.layer_ids.back() != l) t.layer_ids.push_back(l);
      t.top_k = int(pairs.size() / t.layer_ids.size());
      if (std::size_t(t.top_k) * t.layer_ids.size() != pairs.size())
        throw InputError(path, where(), "every layer must list the same number k of experts");
    }
    const int L = t.layers(), k = t.top_k;
    if (pairs.size() != std::size_t(L) * k)
      throw InputError(path, where(), fmt::format("expected {} pairs ({} layers × k = {}), got {}", std::size_t(L) * k,
                                                L, k, pairs.size()));
    row.resize(std::size_t(L) * k);
    for (int l = 0; l < L; ++l) {
      for (int j = 0; j < k; ++j) {
        const auto& [layer, expert] = pairs[std::size_t(l) * k + j];
        if (layer != t.layer_ids[l])
          throw InputError(path, where(),
                           fmt::format("expected layers {} with {} experts each, as on the first token; got "
                                       "layer {} where layer {} was due",
                                       fmt::join(t.layer_ids, ", "), k, layer, t.layer_ids[l]));
        row[std::size_t(l) * k + j] = expert;
        max_expert = std::max(max_expert, expert);
      }
      check_distinct(path, [&] { return fmt::format("{}, layer {}", where(), t.layer_ids[l]); }, &row[std::size_t(l) * k], k);
    }
    t.expert.insert(t.expert.end(), row.begin(), row.end());
    if (std::int64_t(t.expert.size()) * 4 > kMaxChoiceBytes)
      throw InputError(path, where(), fmt::format("the trace holds more than {} token-layer choices, the limit",
                                                kMaxChoiceBytes / 4));
    if (max_tokens > 0 && t.tokens() >= max_tokens) break;
  }
  if (t.layer_ids.empty()) throw InputError(path, "", "the trace holds no token (expected one JSON array per line)");
  t.experts = max_expert + 1;
  return t;
}

RoutingTrace read_npy_choices(const std::string& path) {
  NpyReader npy = NpyReader::open(path);
  if (npy.is_float())
    throw InputError(path, "", "expected integer expert ids (dtype '<i2', '<i4' or '<i8'), got float32 logits");
  const auto& shape = npy.shape();
  RoutingTrace t;
  const int L = shape.size() == 3 ? int(shape[1]) : 1;
  t.top_k = int(shape.back());
  for (int l = 0; l < L; ++l) t.layer_ids.push_back(l);
  if (npy.rows() * npy.cols() * 4 > kMaxChoiceBytes)
    throw InputError(path, "", fmt::format("{} token-layer choices are more than the limit of {}",
                                           npy.rows() * npy.cols(), kMaxChoiceBytes / 4));
  t.expert.resize(std::size_t(npy.rows() * npy.cols()));
  std::vector<std::int64_t> ids(std::size_t(npy.cols()));
  std::int64_t max_expert = -1;
  for (std::int64_t r = 0; r < npy.rows(); ++r) {
    npy.read_ids(r, 1, ids.data());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= kMaxExpertId)
        throw InputError(path, fmt::format("index [{}, {}]", r, i),
                         fmt::format("expert id {} is outside [0, {})", ids[i], kMaxExpertId));
      t.expert[std::size_t(r) * ids.size() + i] = std::int32_t(ids[i]);
      max_expert = std::max(max_expert, ids[i]);
    }
    for (int l = 0; l < L; ++l)
      check_distinct(path, [&] { return shape.size() == 3 ? fmt::format("index [{}, {}]", r, l) : fmt::format("index [{}]", r); },
                     t.at(r, l), t.top_k);
  }
  t.experts = int(max_expert + 1);
  return t;
}

RoutingTrace read_routing_trace(const std::string& path, const std::string& format) {
  if (format == "pairs") return read_pairs_trace(path);
  if (format == "npy") return read_npy_choices(path);
  throw std::invalid_argument("read_routing_trace: format must be pairs or npy");
}

void append_pairs_line(std::string& out, const std::vector<int>& layer_ids, const std::int32_t* choices, int top_k) {
  out.push_back('[');
  for (std::size_t l = 0; l < layer_ids.size(); ++l)
    for (int j = 0; j < top_k; ++j) {
      if (l + j > 0) out += ", ";
      fmt::format_to(std::back_inserter(out), "[{}, {}]", layer_ids[l], choices[l * top_k + j]);
    }
  out += "]\n";
}

LayerLoads read_layer_loads(const std::string& path) {
  JsonParseOptions options;
  options.comments = true;
  nlohmann::json doc = parse_json_bounded(read_input_file(path, kMaxLoadsBytes, "loads file"), path, options);
  std::string root = "";
  bool sglang = false;
  if (doc.is_object()) {
    if (!doc.contains("logical_count") || doc.size() != 1)
      throw InputError(path, "/", "expected an object with the single key \"logical_count\" (SGLang's "
                                  "expert_distribution_recorder), or an array of layers");
    nlohmann::json inner = std::move(doc["logical_count"]);
    doc = std::move(inner);
    root = "/logical_count";
    sglang = true;
  }
  if (doc.is_array() && !doc.empty() && doc[0].is_number()) doc = nlohmann::json::array({doc});
  if (!doc.is_array() || doc.empty())
    throw InputError(path, root.empty() ? "/" : root, "expected a non-empty array of layers, each an array of per-expert loads");
  LayerLoads out;
  for (std::size_t l = 0; l < doc.size(); ++l) {
    const auto& layer = doc[l];
    if (!layer.is_array() || layer.empty() || layer.size() != doc[0].size())
      throw InputError(path, fmt::format("{}/{}", root, l),
                       fmt::format("expected an array of {} per-expert loads (as in layer 0)",
                                   doc[0].is_array() ? doc[0].size() : 1));
    std::vector<double> row(layer.size());
    for (std::size_t e = 0; e < layer.size(); ++e) {
      const std::string where = fmt::format("{}/{}/{}", root, l, e);
      if (!layer[e].is_number())
        throw InputError(path, where, fmt::format("expected a number in [0, 1e+30], got {}", layer[e].type_name()));
      // Loads feed EPLB's float32 arithmetic: bound them well inside float range.
      row[e] = finite_number(layer[e].get<double>(), 0.0, 1e30, path, where, "load");
    }
    // SGLang records dense layers as all-zero rows: they are not MoE layers.
    if (sglang && std::all_of(row.begin(), row.end(), [](double v) { return v == 0.0; })) continue;
    out.layer_ids.push_back(int(l));
    out.load.push_back(std::move(row));
  }
  if (out.load.empty()) throw InputError(path, root, "every layer is all-zero: no MoE layer to read");
  return out;
}

}  // namespace moesim
