// Building a PaliGemma from the spec lib/model/native-spec.ts writes: the files to map, the configs,
// and where each tensor of the architecture's table (lib/model/arch/) lies in its file. The spec was
// validated by lib/model/files.ts; this checks again what the layer loops rely on (each tensor inside
// its file, aligned, of a type the kernels read and of the shape they index with), so that a wrong
// spec is an error, never a read outside the map.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../errors.h"
#include "paligemma.h"

namespace pg {

// One tensor as the spec gives it, unchecked (NaN where the spec had no number).
struct TensorSpec {
  double offset;
  double type;
  std::vector<double> dims;  // ne0 first
};

// The text model or the tower: a file, its config numbers by key, its tensors by name.
struct PartSpec {
  std::string path;
  std::map<std::string, double> config;
  std::map<std::string, TensorSpec> tensors;
};

struct ModelSpec {
  std::unique_ptr<PartSpec> text;    // the decoder (absent: a tower-only model)
  std::unique_ptr<PartSpec> vision;  // the tower (absent: a text-only model)
  const KernelTable* kernels = nullptr;
  int threads = 0;                   // 0: one per physical core
  bool lock_memory = false;          // mlock the mapped files
};

// Why a model could not be built: `code` is one of ModelFilesError's codes (lib/model/files.ts) —
// MAP_FAILED, LOCK_FAILED, MISSING_TENSOR, BAD_TENSOR, BAD_SHAPE, BAD_METADATA — and `path` the file
// at fault. what() is the message without the path.
class LoadError : public CodedError {
 public:
  LoadError(const char* code, std::string path, const std::string& message) : CodedError(code, std::move(path), message) {}
};

// Maps the files and binds their tensors; throws LoadError, OUT_OF_MEMORY (errors.h) or ThreadStartError.
std::unique_ptr<PaliGemma> load_paligemma(const ModelSpec& spec);

}  // namespace pg
