#include "serve_reader.hpp"

#include <fmt/format.h>

#include <cmath>

#include "moesim/error.hpp"
#include "moesim/input.hpp"
#include "scenario_path.hpp"

namespace moesim {

namespace {

constexpr std::int64_t kMaxLength = 1 << 20;       // tokens of one prompt or output
constexpr std::int64_t kMaxRequests = 10'000'000;  // requests of one run
constexpr int kMaxInstanceDevices = 65536;

// "prompt": 512, or {"dist": "uniform", "min": a, "max": b}, or
// {"dist": "lognormal", "mean": m, "sigma": s, "max": cap}.
LengthDist read_length(JsonReader& serve, const std::string& key, std::int64_t def) {
  LengthDist d;
  const Json* raw = serve.take(key);
  if (!raw || raw->is_number()) {
    if (raw && (!raw->is_number_integer() || raw->get<std::int64_t>() < 1 || raw->get<std::int64_t>() > kMaxLength))
      serve.fail(key, fmt::format("expected a length in tokens, an integer in [1, {}], or an object {{\"dist\": "
                                  "\"uniform\" or \"lognormal\", ...}}, got {}", kMaxLength, raw->dump()));
    d.value = raw ? raw->get<std::int64_t>() : def;
    serve.out()[key] = d.value;
    return d;
  }
  if (!raw->is_object())
    serve.fail(key, fmt::format("expected a length in tokens or an object {{\"dist\": ...}}, got {}", json_type(*raw)));
  JsonReader r = serve.object(key);
  const std::string dist = r.choice("dist", {"uniform", "lognormal"});
  if (dist == "uniform") {
    d.kind = LengthDist::Kind::uniform;
    d.min = r.integer("min", 1, 1, kMaxLength);
    d.max = r.integer("max", d.min, d.min, kMaxLength);
  } else {
    d.kind = LengthDist::Kind::lognormal;
    d.mean = r.real("mean", double(def), 1.0, double(kMaxLength));
    d.sigma = r.real("sigma", 1.0, 0.0, 10.0);
    d.max = r.integer("max", std::min<std::int64_t>(kMaxLength, std::int64_t(std::ceil(d.mean * 16))), 1, kMaxLength);
  }
  r.finish();
  return d;
}

InstanceSize read_instance(JsonReader& r) {
  InstanceSize s;
  s.nodes = int(r.integer("nodes", 1, 1, 4096));
  s.devices_per_node = int(r.integer("devices_per_node", 8, 1, 4096));
  if (std::int64_t(s.nodes) * s.devices_per_node > kMaxInstanceDevices)
    r.fail("devices_per_node", fmt::format("nodes × devices_per_node must be at most {}", kMaxInstanceDevices));
  r.finish();
  return s;
}

}  // namespace

std::vector<ArrivalRecord> read_arrival_trace(const std::string& path) {
  std::vector<ArrivalRecord> out;
  LineReader lines(path, "arrival trace");
  std::string line;
  while (lines.next(line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("line {}", lines.line_number());
    const Json j = parse_json_bounded(line, path + ": " + where);
    auto field = [&](const char* key) -> const Json& {
      if (!j.is_object() || !j.contains(key) || !j[key].is_number())
        throw InputError(path, where, fmt::format("expected {{\"time\": seconds, \"prompt\": tokens, \"output\": "
                                                  "tokens}}, with a number for \"{}\"", key));
      return j[key];
    };
    if (j.is_object() && j.size() != 3)
      throw InputError(path, where, "expected exactly the keys time, prompt and output");
    ArrivalRecord a;
    a.time = finite_number(field("time").get<double>(), 0.0, 1e9, path, where, "time");
    for (auto [key, value] : {std::pair{"prompt", &a.prompt}, std::pair{"output", &a.output}}) {
      const Json& v = field(key);
      if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > kMaxLength)
        throw InputError(path, where, fmt::format("{}: expected an integer in [1, {}], got {}", key, kMaxLength,
                                                  excerpt(v.dump())));
      *value = v.get<std::int64_t>();
    }
    if (!out.empty() && a.time < out.back().time)
      throw InputError(path, where, fmt::format("time {} is before the previous line's {}: arrival times must not "
                                                "decrease", a.time, out.back().time));
    if (std::int64_t(out.size()) >= kMaxRequests)
      throw InputError(path, where, fmt::format("more than {} requests", kMaxRequests));
    out.push_back(a);
  }
  if (out.empty()) throw InputError(path, "", "the arrival trace holds no request");
  return out;
}

ServeSpec read_serve(JsonReader& r, const Scenario& sc) {
  ServeSpec s;
  s.enabled = true;
  JsonReader arrivals = r.object("arrivals");
  if (arrivals.has("trace")) {
    const Json* t = arrivals.take("trace");
    if (!t->is_string() || t->get<std::string>().empty())
      arrivals.fail("trace", "expected the path of an arrival trace (JSONL of {\"time\", \"prompt\", \"output\"})");
    s.arrivals_trace = resolve_path(sc.file, t->get<std::string>());
    arrivals.out()["trace"] = t->get<std::string>();
    try {
      s.arrivals = read_arrival_trace(s.arrivals_trace);
    } catch (const InputError& e) {
      throw InputError(e.file(), e.where().empty() ? arrivals.pointer("trace") : e.where(), e.message());
    }
  } else {
    (void)arrivals.choice("process", {"poisson"});
    if (!arrivals.has("rate")) arrivals.fail("rate", "is required: requests per second of the Poisson process");
    s.rate = arrivals.real("rate", 1.0, 1e-9, 1e9);
  }
  arrivals.finish();
  const bool traced = !s.arrivals_trace.empty();
  if (traced && (r.has("prompt") || r.has("output")))
    r.fail(r.has("prompt") ? "prompt" : "output", "the arrival trace gives every request's lengths; remove this field");
  if (!traced) {
    s.prompt = read_length(r, "prompt", 512);
    s.output = read_length(r, "output", 128);
  }
  if (r.has("requests") && r.has("duration"))
    r.fail("duration", "give either requests (a number of arrivals) or duration (seconds of arrivals), not both");
  if (r.has("duration")) {
    s.duration = r.real("duration", 60.0, 1e-9, 1e9);
  } else {
    const std::int64_t all = traced ? std::int64_t(s.arrivals.size()) : 1000;
    s.requests = r.integer("requests", all, 1, traced ? all : kMaxRequests);
  }
  s.max_running = int(r.integer("max_running", 256, 1, 1 << 20));
  s.max_batch_tokens = r.integer("max_batch_tokens", 8192, 1, 1 << 22);
  s.chunked_prefill = r.boolean("chunked_prefill", true);
  JsonReader slo = r.object("slo");
  s.slo_ttft = slo.real("ttft", 1e9, 0.0, 1e9);
  s.slo_tpot = slo.real("tpot", 1e9, 0.0, 1e9);
  slo.finish();
  if (r.has("prefill") || r.has("decode")) {
    if (!r.has("prefill") || !r.has("decode"))
      r.fail(r.has("prefill") ? "decode" : "prefill",
             "is required with the other: disaggregation needs both a prefill and a decode instance "
             "{\"nodes\", \"devices_per_node\"}");
    s.disaggregated = true;
    JsonReader prefill = r.object("prefill");
    s.prefill = read_instance(prefill);
    JsonReader decode = r.object("decode");
    s.decode = read_instance(decode);
  }
  s.kv_bytes_per_token = r.real("kv_bytes_per_token", 0.0, 0.0, 1e12);
  s.migration_blocking = r.choice("migration", {"blocking", "async"}) == "blocking";
  r.finish();
  return s;
}

}  // namespace moesim
