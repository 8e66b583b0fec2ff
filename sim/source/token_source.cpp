// Defaults of the TokenSource interface.
#include <fmt/format.h>

#include "moesim/components.hpp"
#include "moesim/error.hpp"

#include <stdexcept>

namespace moesim {

void TokenSource::configure_layers(const std::vector<Params>&, const std::vector<std::string>& overridden) {
  if (!overridden.empty())
    throw ParamError("layers", fmt::format("this source's parameters cannot differ between layers ('{}' is "
                                           "overridden)", overridden.front()));
}

void TokenSource::next_sequence(int, int, int, StepData&, TokenSink&) const {
  throw std::logic_error("next_sequence called on a source that does not generate by sequence");
}

}  // namespace moesim
