#include "seeds.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string_view>

#include "moesim/error.hpp"

namespace moesim::cli {

std::vector<std::uint64_t> parse_seeds(const std::string& text, const std::string& flag) {
  auto fail = [&] {
    return InputError(flag + " " + text, "", "expected seeds as N, A-B or a comma list of them, e.g. 1-5 or 1,3,7");
  };
  auto number = [&](std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0])) || ec != std::errc() || end != s.data() + s.size())
      throw fail();
    return v;
  };
  std::vector<std::uint64_t> out;
  std::string_view rest(text);
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view part = rest.substr(0, comma);
    const auto dash = part.find('-');
    const std::uint64_t a = number(part.substr(0, dash));
    const std::uint64_t b = dash == std::string_view::npos ? a : number(part.substr(dash + 1));
    if (b < a || b - a >= 10000) throw fail();
    for (std::uint64_t s = a; s <= b; ++s) {
      if (std::find(out.begin(), out.end(), s) != out.end())
        throw InputError(flag + " " + text, "", fmt::format("seed {} is listed twice", s));
      out.push_back(s);
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

}  // namespace moesim::cli
