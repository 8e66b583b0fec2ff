// The timing model's scenario keys (cluster, docs/timing.md) and what a run
// records from it.
#include <catch2/catch.hpp>

#include "../testing/fixtures.hpp"
#include "moesim/error.hpp"
#include "moesim/simulation.hpp"

using namespace moesim;
using testing::tiny_scenario;

namespace {
template <class T>
const T& column(const NamedColumns<T>& columns, const std::string& name) {
  const T* c = columns.find(name);
  if (!c) throw std::runtime_error("no column " + name);
  return *c;
}

std::string error_of(const std::string& extra) {
  try {
    tiny_scenario(extra);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("timing: cluster keys are read, with DeepSeek-V3 defaults", "[cluster][timing][scenario]") {
  const ClusterHardware d = tiny_scenario().cluster.hardware;
  CHECK(d.dispatch_bytes == 7168);
  CHECK(d.combine_bytes == 14336);
  CHECK(d.dispatch == DispatchMode::per_token);
  CHECK_FALSE(d.forwarding);
  CHECK(d.micro_batches == 1);
  CHECK(d.expert_bytes == 44040192);
  CHECK(d.memory_bandwidth == 3.35e12);
  const ClusterHardware hw = tiny_scenario(R"({"cluster":{"nodes":1,"devices_per_node":2,"dispatch":"per_assignment",
      "forwarding":true,"micro_batches":2,"intra_latency":1e-6,"inter_latency":2e-6,"dispatch_bytes":1,
      "combine_bytes":2,"expert_bytes":3,"memory_bandwidth":4,"dense_flops_per_token":5}})").cluster.hardware;
  CHECK(hw.dispatch == DispatchMode::per_assignment);
  CHECK(hw.forwarding);
  CHECK(hw.micro_batches == 2);
  CHECK(hw.intra_latency == 1e-6);
  CHECK(hw.inter_latency == 2e-6);
  CHECK(hw.dispatch_bytes == 1);
  CHECK(hw.combine_bytes == 2);
  CHECK(hw.expert_bytes == 3);
  CHECK(hw.memory_bandwidth == 4);
  CHECK(hw.dense_flops_per_token == 5);
}

TEST_CASE("timing: bad cluster keys name their pointer", "[cluster][timing][scenario]") {
  CHECK_THAT(error_of(R"({"cluster":{"dispatch":"twice"}})"),
             Catch::Contains("/cluster/dispatch") && Catch::Contains("per_assignment"));
  // 4 sequences: at most 4 micro-batches.
  CHECK_THAT(error_of(R"({"cluster":{"micro_batches":5}})"), Catch::Contains("/cluster/micro_batches"));
  CHECK_THAT(error_of(R"({"cluster":{"inter_latency":-1}})"), Catch::Contains("/cluster/inter_latency"));
  // hidden_bytes was replaced by dispatch_bytes and combine_bytes.
  CHECK_THAT(error_of(R"({"cluster":{"hidden_bytes":14336}})"), Catch::Contains("hidden_bytes"));
}

TEST_CASE("timing: a run records the timing series and the critical device's schedule", "[cluster][timing]") {
  const Scenario sc = tiny_scenario(R"({"steps":3,"mode":"inference","record":{"per_step_loads":true},
      "cluster":{"nodes":1,"devices_per_node":2,"micro_batches":2}})");
  const Result r = simulate(sc, sc.strategies.at(0));
  for (const char* name : {"step_time", "dispatch_time", "combine_time", "compute_time", "dense_time", "bytes_intra",
                           "bytes_inter", "bytes_dispatch", "bytes_combine", "idle_fraction", "critical_device"})
    CHECK(column(r.series, name).size() == 3);
  // One node: every byte is intra-node; combine copies are twice dispatch's.
  CHECK(column(r.series, "bytes_inter") == std::vector<double>(3, 0.0));
  for (int s = 0; s < 3; ++s) {
    CHECK(column(r.series, "bytes_intra")[s] == column(r.series, "bytes_dispatch")[s] + column(r.series, "bytes_combine")[s]);
    CHECK(column(r.series, "bytes_combine")[s] == 2 * column(r.series, "bytes_dispatch")[s]);
    CHECK(column(r.series, "step_time")[s] > 0);
  }
  CHECK(column(r.per_step, "device_busy").size() == 3);
  CHECK(column(r.per_step, "layer_time").at(0).size() == 1);
  CHECK(column(r.per_step, "layer_time").at(2).at(0) == column(r.series, "step_time")[2]);
  // 1 layer × 2 micro-batches, 8 numbers each: layer, micro-batch, then 6 times in order.
  const auto& t = column(r.final, "critical_timeline").at(0);  // one row: the whole step
  REQUIRE(t.size() == 16);
  CHECK(t[0] == 0);
  CHECK(t[9] == 1);
  for (int c = 0; c < 2; ++c)
    for (int i = 3; i < 8; ++i) CHECK(t[c * 8 + i] >= t[c * 8 + i - 1]);
  CHECK(column(r.final, "critical_device").at(0).size() == 1);
}
