// Which kernel variants exist in this build, which the CPU can run, and which is the default.
#pragma once

#include <string>
#include <vector>

#include "kernels.h"

namespace pg {

struct Variant {
  const char* name;
  const KernelTable* (*table)();
  bool (*supported)();      // can this CPU (and OS) run it?
  const char* requirements;  // human-readable, for error messages
};

// Best first.
const std::vector<Variant>& compiled_variants();

// The best variant this CPU supports (always at least scalar).
const Variant& best_variant();

// The process-wide default: best_variant() until set_default_variant() (PALIGEMMA_SIMD) changes it.
const Variant& default_variant();
void set_default_variant(const Variant& v);

// Looks a variant up by name. Returns nullptr and fills `error` when the name is unknown
// or the CPU cannot run it.
const Variant* find_variant(const std::string& name, std::string& error);

}  // namespace pg
