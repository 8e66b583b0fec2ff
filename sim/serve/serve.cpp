// The serving engine (MODEL.md §10): continuous batching as vLLM and SGLang
// do it, on one instance or on a prefill and a decode instance whose clocks
// advance in time order (the instance that can start the earliest iteration
// goes next, so every request one hands to the other is there in time).
#include "serve.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <queue>

#include "instance.hpp"
#include "latency_summary.hpp"
#include "requests.hpp"
#include "token_routes.hpp"

namespace moesim {

namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();

enum class Role { both, prefill, decode };

struct Request {
  RequestSpec spec;
  std::int64_t prefilled = 0, generated = 0;
  double first_token = 0, finish = 0;
  Routes prompt_routes;  // prompt × layers × top_k, freed once prefilled
  Routes decode_routes;  // ≤ seq_len tokens, reused cyclically by the decode tokens
};

// A slice of an iteration: `count` prefill tokens of a request, or its one decode token.
struct Work {
  std::int64_t request;
  std::int64_t count;
  bool prefill;
};

struct Lane {
  Lane(Role r, const Scenario& sc, const StrategySpec& st, InstanceSize size) : role(r), instance(sc, st, size) {}
  Role role;
  // Series "instance": 0 = the only or the prefill instance, 1 = decode.
  int index() const { return role == Role::decode ? 1 : 0; }
  ServingInstance instance;
  double clock = 0;
  std::deque<std::int64_t> waiting;
  std::vector<std::int64_t> running;
};

class Server {
 public:
  Server(const Scenario& sc, const StrategySpec& st, const ProgressFn& progress)
      : sc_(sc), spec_(sc.serve), routes_(sc, st), progress_(progress) {
    for (const RequestSpec& r : make_requests(spec_, sc.seed)) requests_.push_back({r, 0, 0, 0, 0, {}, {}});
    InstanceSize whole{sc.shape.nodes, sc.shape.devices_per_node};
    if (spec_.disaggregated) {
      lanes_.emplace_back(Role::prefill, sc, st, spec_.prefill);
      lanes_.emplace_back(Role::decode, sc, st, spec_.decode);
    } else {
      lanes_.emplace_back(Role::both, sc, st, whole);
    }
  }

  Result run() {
    for (;;) {
      Lane* next = nullptr;
      double start = kNever;
      for (Lane& lane : lanes_) {
        const double t = next_start(lane);
        if (t < start) start = t, next = &lane;
      }
      if (!next) break;
      next->clock = start;
      iterate(*next);
    }
    return finish();
  }

 private:
  // When the lane can start its next iteration: now if it has work, else at
  // the next request it will be given; never if none is left.
  double next_start(const Lane& lane) const {
    if (!lane.running.empty() || !lane.waiting.empty()) return lane.clock;
    double t = kNever;
    if (lane.role == Role::decode) {
      if (!ready_.empty()) t = ready_.top().first;
    } else if (next_arrival_ < requests_.size()) {
      t = requests_[next_arrival_].spec.arrival;
    }
    return std::max(lane.clock, t);
  }

  void gather(Lane& lane) {
    if (lane.role == Role::decode) {
      while (!ready_.empty() && ready_.top().first <= lane.clock) {
        lane.waiting.push_back(ready_.top().second);
        ready_.pop();
      }
      return;
    }
    while (next_arrival_ < requests_.size() && requests_[next_arrival_].spec.arrival <= lane.clock)
      lane.waiting.push_back(std::int64_t(next_arrival_++));
  }

  // Routes for a request's tokens, taken from the stream when it is admitted,
  // so the stream is consumed in admission order whatever the timing.
  void assign_routes(Request& r) {
    routes_.take(r.spec.prompt, r.prompt_routes);
    if (r.spec.output > 1) routes_.take(std::min<std::int64_t>(r.spec.output - 1, sc_.shape.seq_len), r.decode_routes);
  }

  // The iteration's work (MODEL.md §10): running requests first (their next
  // prefill chunk or decode token), then waiting requests admitted
  // first-come-first-served while fewer than max_running run and the
  // iteration's prefill tokens fit max_batch_tokens.
  void plan(Lane& lane) {
    work_.clear();
    std::int64_t budget = spec_.max_batch_tokens;
    for (std::int64_t id : lane.running) {
      const Request& r = requests_[std::size_t(id)];
      if (r.prefilled < r.spec.prompt) {
        const std::int64_t c = std::min(r.spec.prompt - r.prefilled, budget);
        if (c > 0) work_.push_back({id, c, true});
        budget -= c;
      } else {
        work_.push_back({id, 1, false});
      }
    }
    while (!lane.waiting.empty() && int(lane.running.size()) < spec_.max_running) {
      const std::int64_t id = lane.waiting.front();
      Request& r = requests_[std::size_t(id)];
      std::int64_t c = 1;
      if (lane.role != Role::decode) {
        const std::int64_t rest = r.spec.prompt - r.prefilled;
        if (spec_.chunked_prefill) {
          if (budget == 0) break;
          c = std::min(rest, budget);
        } else {
          // A prompt longer than the whole budget runs alone rather than never.
          if (rest > budget && budget < spec_.max_batch_tokens) break;
          c = rest;
        }
        budget = std::max<std::int64_t>(0, budget - c);
        assign_routes(r);
      }
      lane.waiting.pop_front();
      lane.running.push_back(id);
      work_.push_back({id, c, lane.role != Role::decode});
    }
  }

  void iterate(Lane& lane) {
    gather(lane);
    plan(lane);
    const int per_token = routes_.per_token(), D = lane.instance.devices();
    iter_routes_.clear();
    homes_.clear();
    std::int64_t prefill_tokens = 0;
    for (const Work& w : work_) {
      const Request& r = requests_[std::size_t(w.request)];
      const auto home = std::int32_t(w.request % D);  // request r's tokens live on device r mod D
      if (w.prefill) {
        const auto first = r.prompt_routes.begin() + std::ptrdiff_t(r.prefilled * per_token);
        iter_routes_.insert(iter_routes_.end(), first, first + std::ptrdiff_t(w.count * per_token));
        prefill_tokens += w.count;
      } else {
        const std::int64_t cycle = std::int64_t(r.decode_routes.size()) / per_token;
        const auto first = r.decode_routes.begin() + std::ptrdiff_t(((r.generated - 1) % cycle) * per_token);
        iter_routes_.insert(iter_routes_.end(), first, first + per_token);
      }
      homes_.insert(homes_.end(), std::size_t(w.count), home);
    }
    const IterationTiming timing = lane.instance.run(iter_routes_, homes_);
    const double start = lane.clock, end = start + timing.time;

    auto& s = series_;
    s["iteration"].push_back(double(iterations_++));
    s["instance"].push_back(lane.index());
    s["time"].push_back(start);
    s["iteration_time"].push_back(timing.time);
    s["tokens"].push_back(double(homes_.size()));
    s["prefill_tokens"].push_back(double(prefill_tokens));
    s["running"].push_back(double(lane.running.size()));
    s["queue"].push_back(double(lane.waiting.size()));
    s["rank_imbalance"].push_back(timing.rank_imbalance);
    s["migration_delay"].push_back(timing.migration_delay);

    for (const Work& w : work_) advance(lane, w, end);
    std::erase_if(lane.running, [&](std::int64_t id) { return leaving(lane, requests_[std::size_t(id)]); });
    lane.clock = end;
  }

  // A request leaves a lane once done there: after its last token, or, on a
  // prefill instance, after its prefill.
  bool leaving(const Lane& lane, const Request& r) const {
    if (lane.role == Role::prefill) return r.prefilled == r.spec.prompt;
    return r.generated == r.spec.output;
  }

  void advance(Lane& lane, const Work& w, double end) {
    Request& r = requests_[std::size_t(w.request)];
    if (w.prefill) {
      r.prefilled += w.count;
      if (r.prefilled < r.spec.prompt) return;
      r.first_token = end;  // the iteration that completes the prefill emits the first token
      r.generated = 1;
      Routes().swap(r.prompt_routes);
      if (lane.role == Role::prefill && r.spec.output > 1) {
        // The KV cache crosses the inter-node link to the decode instance.
        const double kv = spec_.kv_bytes_per_token * double(r.spec.prompt) / lane.instance.inter_bandwidth();
        ready_.push({end + kv, w.request});
        return;
      }
    } else {
      ++r.generated;
    }
    if (r.generated == r.spec.output) complete(r, end);
  }

  void complete(Request& r, double end) {
    r.finish = end;
    Routes().swap(r.decode_routes);
    ++completed_;
    if (progress_) progress_(int(std::min<std::int64_t>(completed_, std::numeric_limits<int>::max())));
  }

  Result finish() {
    Result result;
    result.layer_ids = sc_.layer_ids;
    std::vector<RequestRecord> records;
    double duration = 0;
    for (const Request& r : requests_) {
      records.push_back({r.spec.arrival, r.first_token, r.finish, r.spec.prompt, r.spec.output});
      duration = std::max(duration, r.finish);
    }
    summarize_requests(records, spec_, duration, result);
    auto mean = [&](const char* name) {
      const auto& v = series_[name];
      double sum = 0;
      for (double x : v) sum += x;
      return v.empty() ? 0.0 : sum / double(v.size());
    };
    auto& s = result.summary;
    s["iterations"] = double(iterations_);
    s["iteration_time_mean"] = mean("iteration_time");
    s["rank_imbalance"] = mean("rank_imbalance");
    s["queue_mean"] = mean("queue");
    double moved = 0, delay = 0;
    for (const Lane& lane : lanes_) moved += double(lane.instance.moved_slots());
    for (double x : series_["migration_delay"]) delay += x;
    s["migrations"] = moved;
    s["migration_time"] = delay;
    result.series = std::move(series_);
    return result;
  }

  const Scenario& sc_;
  const ServeSpec& spec_;
  TokenRoutes routes_;
  ProgressFn progress_;
  std::vector<Request> requests_;
  std::deque<Lane> lanes_;  // a deque: lanes are never moved
  std::size_t next_arrival_ = 0;
  // Requests whose KV cache reaches the decode instance at .first, earliest first (ties: lower id).
  std::priority_queue<std::pair<double, std::int64_t>, std::vector<std::pair<double, std::int64_t>>,
                      std::greater<>> ready_;
  std::vector<Work> work_;
  Routes iter_routes_;
  std::vector<std::int32_t> homes_;
  NamedColumns<std::vector<double>> series_;
  std::int64_t iterations_ = 0, completed_ = 0;
};

}  // namespace

Result serve(const Scenario& sc, const StrategySpec& strategy, const ProgressFn& progress) {
  return Server(sc, strategy, progress).run();
}

}  // namespace moesim
