#pragma once
// Self-registering named components (ns-3 factory + SimGrid model registry).
// Each implementation file registers itself with one static Registration;
// the scenario reader looks components up by name, `moesim list` prints them,
// and one test runs every entry.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "moesim/params.hpp"

namespace moesim {

struct Shape;  // model and cluster dimensions, see step.hpp

template <class Interface>
class Registry {
 public:
  using Factory = std::function<std::unique_ptr<Interface>(const Params&, const Shape&)>;
  struct Entry {
    std::string name;
    std::string description;  // one line
    std::vector<ParamSpec> params;
    Factory make;
  };

  static Registry& instance() {
    static Registry registry;
    return registry;
  }
  void add(Entry e) { entries_[e.name] = std::move(e); }
  const Entry* find(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }
  std::vector<const Entry*> entries() const {  // sorted by name
    std::vector<const Entry*> out;
    for (const auto& [_, e] : entries_) out.push_back(&e);
    return out;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [n, _] : entries_) out.push_back(n);
    return out;
  }

 private:
  std::map<std::string, Entry> entries_;
};

// `static Registration<Dropper> reg{{"capacity", "...", {...}, factory}};`
template <class Interface>
struct Registration {
  explicit Registration(typename Registry<Interface>::Entry e) {
    Registry<Interface>::instance().add(std::move(e));
  }
};

// Factory for the common case of a constructor taking (Params, Shape).
template <class Interface, class Impl>
std::unique_ptr<Interface> make(const Params& p, const Shape& s) {
  return std::make_unique<Impl>(p, s);
}

}  // namespace moesim
