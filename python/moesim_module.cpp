// moesim._moesim: the simulator for Python. Runs a scenario through the same
// entry points as `moesim run` (load/parse, select, simulate, result_text),
// so each result is the very text the CLI writes; python/moesim turns it
// into dicts with numpy arrays.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "cli/commands.hpp"
#include "moesim/error.hpp"
#include "moesim/result.hpp"
#include "moesim/simulation.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

namespace {

// [(strategy name, result JSON text)] in the scenario's strategy order.
std::vector<std::pair<std::string, std::string>> run_scenario(const std::string& text, const std::string& file,
                                                              bool is_path, const std::vector<std::string>& overrides,
                                                              const std::vector<std::string>& strategies,
                                                              std::optional<int> threads) {
  moesim::Scenario sc = is_path ? moesim::load_scenario(file, overrides)
                                : moesim::parse_scenario(text, file, overrides);
  moesim::select_strategies(sc, strategies);
#ifdef _OPENMP
  if (threads) {
    if (*threads < 1) throw moesim::InputError("threads", "", "expected an integer ≥ 1");
    omp_set_num_threads(*threads);
  }
#endif
  std::vector<std::pair<std::string, std::string>> out;
  py::gil_scoped_release release;  // the simulation touches no Python object
  for (const auto& st : sc.strategies) {
    const moesim::Result r = moesim::cli::simulate_or_fail(sc, st, "strategy '" + st.name + "'");
    out.emplace_back(st.name, moesim::result_text(sc, st, r));
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_moesim, m) {
  m.doc() = "moesim simulator core (use the moesim package, not this module)";
  m.attr("version") = moesim::kVersion;
  // Bad input raises moesim.InputError with the CLI's one-line message.
  static py::exception<moesim::InputError> input_error(m, "InputError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const moesim::InputError& e) {
      input_error(e.what());
    }
  });
  m.def("run_scenario", &run_scenario, py::arg("text"), py::arg("file"), py::arg("is_path"), py::arg("overrides"),
        py::arg("strategies"), py::arg("threads"),
        "Runs a scenario (file or JSON text); returns [(strategy, result JSON text)].");
}
