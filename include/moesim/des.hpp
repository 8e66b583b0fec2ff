#pragma once
// A minimal discrete-event kernel: a future-event list ordered by
// (time, insertion sequence number), a clock, and a run loop.
//
// Design, after ns-3 and SimGrid:
//  - ns-3 (src/core/model/scheduler.h) keys every event by EventKey
//    {m_ts, m_uid} and orders by timestamp, then by the unique id handed out
//    at insertion, so simultaneous events run first-scheduled-first: the
//    order is a function of the program, never of the heap's internals. We
//    keep exactly that key. ns-3's HeapScheduler (a binary heap on a
//    std::vector) is the model for the container: O(log n) insert/remove,
//    no per-event node allocation; ours is 4-ary (shallower).
//  - ns-3 wraps the action in a ref-counted EventImpl (one heap allocation
//    per event) and SimGrid's kernel keeps a heap of (date, action) and asks
//    each model for its next event date. Both are more than moesim needs:
//    here the event payload is a template parameter, so a caller can store a
//    small tagged struct by value (no allocation at all) and dispatch on it,
//    or use std::function<void()> when convenience matters more.
//  - No cancellation: moesim never needs it (a handler that became moot can
//    check its own state, as SimGrid's "version" stamps do).
//
// The kernel knows nothing about experts, devices or tokens.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

namespace moesim::des {

using Time = double;  // seconds of simulated time

template <class Payload>
class EventQueue {
 public:
  // Schedules `payload` at absolute time `time` (≥ now()). Events at equal
  // times run in the order they were scheduled. Scheduling into the past or
  // at a non-finite time is a programming error.
  void schedule(Time time, Payload payload) {
    if (!std::isfinite(time) || time < now_)
      throw std::logic_error("des::EventQueue::schedule: time is in the past or not finite");
    // The entry goes straight to its place: written at the back and read
    // again at once, it would wait for its own stores to drain.
    heap_.emplace_back();
    // + 0.0: −0.0 becomes +0.0, whose bits sort with the other non-negative times.
    sift_up(heap_.size() - 1, Entry{std::bit_cast<std::uint64_t>(time + 0.0), next_seq_++, std::move(payload)});
  }
  void schedule_in(Time delay, Payload payload) { schedule(now_ + delay, std::move(payload)); }

  // Pops and dispatches events until none is left; `dispatch(Payload&)` may
  // schedule further events. Returns the time of the last event (or now()).
  template <class Dispatch>
  Time run(Dispatch&& dispatch) {
    while (step(dispatch)) {
    }
    return now_;
  }
  // Convenience for callable payloads (std::function<void()> etc.).
  Time run() {
    return run([](Payload& p) { p(); });
  }

  // Runs the single next event; false when the queue is empty.
  template <class Dispatch>
  bool step(Dispatch&& dispatch) {
    if (heap_.empty()) return false;
    Entry e = std::move(heap_.front());  // off the heap before dispatch: the handler may schedule (and reallocate)
    if (heap_.size() > 1) {
      Entry last = std::move(heap_.back());
      heap_.pop_back();
      sift_down(std::move(last));
    } else {
      heap_.pop_back();
    }
    now_ = std::bit_cast<Time>(e.time_bits);
    ++executed_;
    dispatch(e.payload);
    return true;
  }

  Time now() const { return now_; }
  bool empty() const { return heap_.empty(); }
  // Time of the next event; the queue must not be empty. Lets a caller finish
  // every event of one instant before acting on their joint outcome.
  Time next_time() const { return std::bit_cast<Time>(heap_.front().time_bits); }
  std::size_t pending() const { return heap_.size(); }
  std::uint64_t executed() const { return executed_; }
  // Keeps the heap's capacity so a queue reused every step stops allocating.
  void reset() {
    heap_.clear();
    now_ = 0.0;
    next_seq_ = 0;
    executed_ = 0;
  }
  void reserve(std::size_t n) { heap_.reserve(n); }

 private:
  struct Entry {
    // The time's bits: for times ≥ +0.0 they order as the times do, so that
    // (time, seq) compares as one 128-bit integer, a compare and a borrow
    // (two floating-point compares and a parity test before).
    std::uint64_t time_bits;
    std::uint64_t seq;  // insertion order: the deterministic tie-break (ns-3 m_uid)
    Payload payload;
  };
  static bool later(const Entry& a, const Entry& b) {
    using Key = unsigned __int128;
    return (Key(a.time_bits) << 64 | a.seq) > (Key(b.time_bits) << 64 | b.seq);
  }

  // A 4-ary heap, earliest on top: half the depth of a binary heap and its
  // four children share a cache line or two. (time, seq) is a total order,
  // so the pop order is that order whatever the heap's shape.
  static constexpr std::size_t kArity = 4;
  // Places `e` at the hole i, moving later parents down.
  void sift_up(std::size_t i, Entry e) {
    while (i > 0) {
      const std::size_t parent = (i - 1) / kArity;
      if (!later(heap_[parent], e)) break;
      heap_[i] = std::move(heap_[parent]);
      i = parent;
    }
    heap_[i] = std::move(e);
  }
  // Places `e` at the root's hole, moving earlier children up.
  void sift_down(Entry e) {
    const std::size_t n = heap_.size();
    std::size_t i = 0;
    for (;;) {
      const std::size_t first = i * kArity + 1;
      if (first >= n) break;
      std::size_t best = first;
      if (first + kArity <= n) {  // all four: two independent pairs, then their winners
        const std::size_t a = later(heap_[first], heap_[first + 1]) ? first + 1 : first;
        const std::size_t b = later(heap_[first + 2], heap_[first + 3]) ? first + 3 : first + 2;
        best = later(heap_[a], heap_[b]) ? b : a;
      } else {
        for (std::size_t c = first + 1; c < n; ++c)
          if (later(heap_[best], heap_[c])) best = c;
      }
      if (!later(e, heap_[best])) break;
      heap_[i] = std::move(heap_[best]);
      i = best;
    }
    heap_[i] = std::move(e);
  }

  std::vector<Entry> heap_;
  Time now_ = 0.0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t executed_ = 0;
};

// The handler-per-event flavour: each event carries its own closure.
// (libstdc++'s std::function stores trivially copyable captures of up to
// 16 bytes in place, so small lambdas do not allocate either.)
using Simulator = EventQueue<std::function<void()>>;

}  // namespace moesim::des
