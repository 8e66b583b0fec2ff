// No per-token heap allocation in the step loop (the performance issue's
// requirement): every operator new in this test binary is counted, and a run
// with 16× the tokens per step (4 800 more token-steps) must allocate as often,
// up to a few per step: containers whose size depends on the data, such as the
// timing model's event queue (one event per device pair that exchanges tokens).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

#include "../testing/fixtures.hpp"
#include "moesim/simulation.hpp"

namespace {
std::atomic<long> allocations{0};
}  // namespace

// Replaces every unaligned form of the global operator new and delete (all of
// them: AddressSanitizer supplies its own of each, and a mix would mismatch).
namespace {
void* counted_new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void* counted_new_or_throw(std::size_t size) {
  if (void* p = counted_new(size)) return p;
  throw std::bad_alloc();
}
}  // namespace
void* operator new(std::size_t size) { return counted_new_or_throw(size); }
void* operator new[](std::size_t size) { return counted_new_or_throw(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_new(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return counted_new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace moesim {
namespace {

// Allocations of each strategy's whole run, at `seq_len` tokens per sequence.
std::vector<long> run_allocations(const std::string& scenario_fields, int seq_len) {
  const Scenario sc = testing::tiny_scenario(
      "{" + scenario_fields + R"(,"batch":{"sequences":4,"seq_len":)" + std::to_string(seq_len) + "}}");
  std::vector<long> per_strategy;
  for (const auto& strategy : sc.strategies) {
    const long before = allocations.load();
    simulate(sc, strategy);
    per_strategy.push_back(allocations.load() - before);
  }
  return per_strategy;
}

// 16× the tokens must allocate as often, up to `slack` more per run.
void check_flat_in_tokens(const std::string& scenario_fields, long slack) {
  run_allocations(scenario_fields, 16);  // warm-up: thread pools and function-local statics
  const std::vector<long> few = run_allocations(scenario_fields, 16), many = run_allocations(scenario_fields, 256);
  for (std::size_t i = 0; i < few.size(); ++i) UNSCOPED_INFO("strategy " << i << ": " << few[i] << " vs " << many[i]);
  for (std::size_t i = 0; i < few.size(); ++i) CHECK(std::abs(many[i] - few[i]) <= slack);
}

}  // namespace

TEST_CASE("the step loop allocates no more for 16× the tokens", "[simulation][allocation]") {
  // One strategy per routing, dropping, balancing and placement kind, trained.
  check_flat_in_tokens(R"("mode":"train","steps":5,"record":{"per_step_loads":false},
    "cluster":{"nodes":2,"devices_per_node":2},"model":{"experts":16,"top_k":4,"hidden":8,"score":"sigmoid"},
    "strategies":[
      {"name":"aux","balancers":[{"type":"aux_loss","alpha":0.01,"scope":"sequence"},{"type":"z_loss"}]},
      {"name":"bias","balancers":[{"type":"bias"}],"routing":{"type":"node_limited","m":1}},
      {"name":"cap","dropper":{"type":"capacity","cf":1.0},"routing":{"type":"device_limited","m":2}},
      {"name":"dev","dropper":{"type":"device","cf":1.0},"placement":{"type":"eplb","redundant_experts":4}}])",
                       2 * 5);
}

TEST_CASE("a many-layer step with overlap and forwarding allocates no more for 16× the tokens",
          "[simulation][allocation][layers]") {
  // Four layers, two micro-batches, DeepEP forwarding over two nodes, EPLB
  // re-placing every step: the timing model and the traffic builder at work.
  check_flat_in_tokens(R"("mode":"inference","steps":5,"record":{"per_step_loads":false},
    "cluster":{"nodes":2,"devices_per_node":2,"micro_batches":2,"forwarding":true},
    "model":{"layers":4,"experts":16,"top_k":4,"hidden":8,"score":"sigmoid"},
    "strategies":[
      {"name":"bias","balancers":[{"type":"bias"}],"routing":{"type":"node_limited","m":1}},
      {"name":"eplb","placement":{"type":"eplb","redundant_experts":4,"rebalance_every":1}}])",
                       2 * 5);
}

}  // namespace moesim
