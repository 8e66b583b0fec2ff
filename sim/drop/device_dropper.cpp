// DeepSeek-V2 device-level token dropping (arXiv 2405.04434 §2.2.4; MODEL.md
// §5): C_d = ceil(cf·T·k/D) per device, lowest-affinity assignments dropped
// first, never from the protected ~10% of sequences.
#include "moesim/components.hpp"
#include "moesim/drop_rules.hpp"

namespace moesim {
namespace {

class DeviceDropper final : public Dropper {
 public:
  DeviceDropper(const Params& p, const Shape& s)
      : capacity_(device_capacity(p.real("cf"), s.tokens(), s.top_k, s.devices())),
        protected_fraction_(p.real("protected_fraction")) {}

  void keep(StepData& data, const Shape& s, const PlacementMap& map) override {
    device_keep(data.expert, data.affinity, map, s.tokens(), s.top_k, s.seq_len, capacity_, protected_fraction_,
                data.keep, workspace_);
  }
  std::vector<std::uint8_t> protected_sequences(const Shape& s) const override {
    std::vector<std::uint8_t> out(s.sequences);
    for (int n = 0; n < s.sequences; ++n) out[n] = is_protected(n, protected_fraction_);
    return out;
  }

 private:
  std::int64_t capacity_;
  double protected_fraction_;
  DeviceDropWorkspace workspace_;
};

const Registration<Dropper> registration{{
    "device",
    "DeepSeek-V2 device-level dropping: C_d = ceil(cf·T·k/D), lowest affinity first, protected sequences kept",
    {
        ParamSpec::real("cf", 1.0, 0.0, 1024.0, "device capacity factor"),
        ParamSpec::real("protected_fraction", 0.1, 0.0, 1.0,
                        "fraction of sequences never dropped (n protected iff floor((n+1)p) > floor(np))"),
    },
    make<Dropper, DeviceDropper>,
}};

}  // namespace
}  // namespace moesim
