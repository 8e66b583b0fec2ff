#pragma once
// Strict reading of one JSON object: typed fields with bounds, defaults filled
// into a normalised copy, and an error for every key nobody asked for, so a
// typo never silently becomes a default.
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "moesim/params.hpp"

namespace moesim {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

class JsonReader {
 public:
  // `out` receives every field read, defaults included, in reading order.
  JsonReader(const Json& object, std::string pointer, std::string file, OrderedJson& out);

  std::int64_t integer(const std::string& key, std::int64_t def, std::int64_t min, std::int64_t max);
  std::int64_t required_integer(const std::string& key, std::int64_t min, std::int64_t max);
  double real(const std::string& key, double def, double min, double max);
  bool boolean(const std::string& key, bool def);
  std::string choice(const std::string& key, const std::vector<std::string>& choices);  // first is default
  std::string name(const std::string& key, const std::string& def = "");  // [A-Za-z0-9._-]+; "" def: required
  // A child object (an empty one if absent); `out` gets the child's normalised copy.
  JsonReader object(const std::string& key);
  // A child read from `replacement` instead of the file (e.g. a shorthand
  // string expanded to {"type": ...}); `replacement` must outlive the reader.
  JsonReader object_from(const std::string& key, const Json& replacement);
  // The raw value of a key (nullptr if absent), marked as read.
  const Json* take(const std::string& key);
  // A child that is an array of objects (absent: empty).
  std::vector<JsonReader> objects(const std::string& key, bool required_nonempty);
  // Fills Params from a component schema (the `type` key must already be read).
  Params params(const std::vector<ParamSpec>& schema);
  bool has(const std::string& key) const { return object_.contains(key); }
  // Fails for keys present but never read. Call after reading every field.
  void finish() const;

  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // Like fail, for a path below this object whose '/' separate levels ("schedule/0").
  [[noreturn]] void fail_path(const std::string& path, const std::string& message) const;
  std::string pointer(const std::string& key) const;
  const std::string& pointer() const { return pointer_; }
  const std::string& file() const { return file_; }
  // The normalised copy of this object. Looked up from the root each time:
  // ordered_json stores members in a vector, so references into it do not
  // survive a sibling's insertion.
  OrderedJson& out() const { return (*root_)[OrderedJson::json_pointer(pointer_)]; }

 private:
  JsonReader(const Json& object, std::string pointer, std::string file, OrderedJson* root);
  const Json& field(const std::string& key);
  const Json& object_;
  std::string pointer_, file_;
  OrderedJson* root_;
  std::set<std::string> read_;
};

// Human-readable JSON type name for messages ("a string", "an array").
std::string json_type(const Json& v);

}  // namespace moesim
