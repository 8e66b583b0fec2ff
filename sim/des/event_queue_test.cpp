// Tests of the discrete-event kernel: ordering by (time, insertion order),
// events scheduled from handlers, the clock, and misuse.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "moesim/des.hpp"

using moesim::des::EventQueue;
using moesim::des::Simulator;

TEST_CASE("des: events run in time order, ties in insertion order", "[des]") {
  Simulator sim;
  std::string log;
  sim.schedule(2.0, [&] { log += "c"; });
  sim.schedule(1.0, [&] { log += "a"; });
  sim.schedule(2.0, [&] { log += "d"; });  // same time as "c", scheduled later
  sim.schedule(1.0, [&] { log += "b"; });
  sim.schedule(0.5, [&] { log += "0"; });
  CHECK(sim.pending() == 5);
  CHECK(sim.run() == 2.0);
  CHECK(log == "0abcd");
  CHECK(sim.executed() == 5);
  CHECK(sim.empty());
}

TEST_CASE("des: many simultaneous events keep FIFO order through heap reshuffles", "[des]") {
  // A heap is not stable by itself; the sequence number must make it so.
  EventQueue<int> q;
  for (int i = 0; i < 100; ++i) q.schedule(i % 3 == 0 ? 1.0 : 0.0, i);
  std::vector<int> order;
  q.run([&](int& i) { order.push_back(i); });
  std::vector<int> expected;
  for (int i = 0; i < 100; ++i)
    if (i % 3 != 0) expected.push_back(i);
  for (int i = 0; i < 100; ++i)
    if (i % 3 == 0) expected.push_back(i);
  CHECK(order == expected);
}

TEST_CASE("des: random times with many ties pop in (time, insertion) order", "[des]") {
  // The 4-ary heap against a stable sort of the same events, with pops
  // interleaved with pushes so that sift-down meets partly filled levels.
  EventQueue<int> q;
  std::vector<std::pair<double, int>> pending, popped;
  unsigned x = 12345;
  auto next = [&] { return x = x * 1103515245u + 12345u, (x >> 16) % 16; };
  int id = 0;
  for (int round = 0; round < 200; ++round) {
    for (unsigned n = next() % 7; n > 0; --n) {
      const double t = q.now() + double(next() % 5);  // few distinct times: many ties
      q.schedule(t, id);
      pending.push_back({t, id++});
    }
    for (unsigned n = next() % 5; n > 0 && !q.empty(); --n)
      q.step([&](int& i) { popped.push_back({q.now(), i}); });
  }
  q.run([&](int& i) { popped.push_back({q.now(), i}); });
  REQUIRE(popped.size() == pending.size());
  // Times never go back (each is ≥ now when pushed) and ties pop in
  // insertion order, so the whole sequence is sorted by (time, id).
  CHECK(std::is_sorted(popped.begin(), popped.end()));
}

TEST_CASE("des: handlers schedule further events and see the clock", "[des]") {
  Simulator sim;
  std::vector<double> seen;
  // A chain: each event schedules the next 0.25 s later, three times.
  std::function<void(int)> tick = [&](int left) {
    seen.push_back(sim.now());
    if (left > 0) sim.schedule_in(0.25, [&, left] { tick(left - 1); });
  };
  sim.schedule(1.0, [&] { tick(3); });
  // An event scheduled by a handler at the current time runs after the
  // events already queued for that time (it has a higher sequence number).
  sim.schedule(1.5, [&] {
    seen.push_back(-1.0);
    sim.schedule(sim.now(), [&] { seen.push_back(-2.0); });
  });
  CHECK(sim.run() == 1.75);
  // Time 1.5 holds three events: the pre-scheduled -1 (seq 1), the chain's
  // tick (scheduled at 1.25, seq 3) and -2 (scheduled at 1.5, seq 4).
  CHECK(seen == std::vector<double>{1.0, 1.25, -1.0, 1.5, -2.0, 1.75});
}

TEST_CASE("des: tagged payloads dispatch without closures", "[des]") {
  struct Ev {
    int kind;
    int who;
  };
  EventQueue<Ev> q;
  q.schedule(3.0, {1, 7});
  q.schedule(1.0, {0, 4});
  int sum = 0;
  q.run([&](Ev& e) { sum = sum * 10 + e.kind * 100 + e.who; });
  CHECK(sum == (4 * 10) + 107);  // 4 first, then 107
  CHECK(q.now() == 3.0);
  q.reset();
  CHECK(q.now() == 0.0);
  CHECK(q.executed() == 0);
}

TEST_CASE("des: scheduling into the past or at NaN is refused", "[des]") {
  Simulator sim;
  sim.schedule(1.0, [&] { CHECK_THROWS_AS(sim.schedule(0.5, [] {}), std::logic_error); });
  sim.run();
  CHECK_THROWS_AS(sim.schedule(std::nan(""), [] {}), std::logic_error);
  CHECK(sim.empty());
}

TEST_CASE("des: times of every magnitude order as numbers, −0 as +0", "[des]") {
  // The queue compares a time's bits: for non-negative doubles they order as
  // the numbers do, across subnormals, powers of two and huge values; −0.0
  // (allowed at now = 0) must run with the +0.0 events in insertion order,
  // not after every positive time as its sign bit would sort it.
  EventQueue<int> q;
  const std::vector<double> times = {1e300, 0.0, 5e-324, 1.0, -0.0, 0.5, 2.2250738585072014e-308, 0x1p-1, 3.0, 0.0};
  for (int i = 0; i < int(times.size()); ++i) q.schedule(times[std::size_t(i)], i);
  std::vector<int> order;
  std::vector<double> seen;
  q.run([&](int& i) {
    order.push_back(i);
    seen.push_back(q.now());
  });
  // 0.0 (1), −0.0 (4), 0.0 (9); 5e-324 (2); 2.2e-308 (6); 0.5 (5), 0x1p-1 (7); 1.0 (3); 3.0 (8); 1e300 (0).
  CHECK(order == std::vector<int>{1, 4, 9, 2, 6, 5, 7, 3, 8, 0});
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  CHECK(!std::signbit(seen[1]));  // −0.0 is kept as +0.0: the clock never reads −0
}
