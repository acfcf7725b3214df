#include "load.h"

#include <cmath>

namespace pg {
namespace {

std::string ShapeString(const int64_t* ne, size_t n) {
  std::string s = "[";
  for (size_t i = 0; i < n; i++) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// A part's config numbers, read with range checks; failures name the file (BAD_METADATA).
class ConfigSource {
 public:
  ConfigSource(const PartSpec& part, const char* where) : part_(part), where_(where) {}

  double number(const char* key) const {
    const auto it = part_.config.find(key);
    if (it == part_.config.end() || std::isnan(it->second)) fail(std::string(key) + " must be a number");
    return it->second;
  }

  int integer(const char* key) const {
    const double d = number(key);
    if (!(d >= 1) || d > 1 << 30 || d != std::floor(d))
      fail(std::string(key) + " must be an integer in 1.." + std::to_string(1 << 30));
    return static_cast<int>(d);
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw LoadError("BAD_METADATA", part_.path, where_ + std::string(".") + what);
  }

 private:
  const PartSpec& part_;
  const char* where_;
};

// Binds the tensors of one mapped file: each must be in the spec, of a type of weight_types.h (F32
// where the kernels read floats), of exactly the dims the layer loops index with, and inside the file.
class TensorSource {
 public:
  TensorSource(const PartSpec& part, const MappedFile& file) : part_(part), file_(file) {}

  // A matrix the kernels multiply: any weight type.
  Weight weight(const std::string& name, std::initializer_list<int64_t> dims) const { return get(name, dims, false); }
  // A vector the kernels read as floats (norm, bias, position embedding): F32 only.
  Weight f32(const std::string& name, std::initializer_list<int64_t> dims) const { return get(name, dims, true); }

 private:
  [[noreturn]] void fail(const char* code, const std::string& name, const std::string& what) const {
    throw LoadError(code, part_.path, "tensor " + name + " " + what);
  }

  Weight get(const std::string& name, std::initializer_list<int64_t> expected, bool f32_only) const {
    const auto it = part_.tensors.find(name);
    if (it == part_.tensors.end()) throw LoadError("MISSING_TENSOR", part_.path, "missing tensor " + name);
    const TensorSpec& t = it->second;
    const WeightType* wt = find_weight_type(std::isfinite(t.type) ? static_cast<int64_t>(t.type) : -1);
    if (!wt) {
      std::string known;
      for (const WeightType& k : kWeightTypes) known += (known.empty() ? "" : ", ") + std::string(k.name);
      const std::string type = std::isfinite(t.type) ? std::to_string(static_cast<long long>(t.type)) : "(none)";
      fail("BAD_TENSOR", name, "has ggml type " + type + "; the kernels read " + known);
    }
    if (f32_only && wt->id != DT_F32) fail("BAD_TENSOR", name, "must be F32");

    int64_t got[4] = {1, 1, 1, 1}, want[4] = {1, 1, 1, 1};
    if (t.dims.empty() || t.dims.size() > 4) fail("BAD_SHAPE", name, "must have 1 to 4 dims");
    for (size_t i = 0; i < t.dims.size(); i++) {
      if (!(t.dims[i] >= 1 && t.dims[i] <= 1e12) || t.dims[i] != std::floor(t.dims[i])) fail("BAD_SHAPE", name, "has a bad dimension");
      got[i] = static_cast<int64_t>(t.dims[i]);
    }
    size_t i = 0;
    for (int64_t e : expected) want[i++] = e;
    for (int j = 0; j < 4; j++) {
      if (got[j] != want[j])
        fail("BAD_SHAPE", name, "has shape " + ShapeString(got, t.dims.size()) + ", expected " + ShapeString(want, expected.size()));
    }
    if (got[0] % wt->block != 0)
      fail("BAD_TENSOR", name, "has rows of " + std::to_string(got[0]) + " elements, not a multiple of " + wt->name +
                                   "'s block of " + std::to_string(wt->block));
    const size_t bytes = static_cast<size_t>(got[1] * got[2] * got[3]) * row_bytes(*wt, static_cast<size_t>(got[0]));
    if (!(t.offset >= 0) || t.offset + static_cast<double>(bytes) > static_cast<double>(file_.size()))
      fail("BAD_TENSOR", name, "lies outside the file");
    if (static_cast<size_t>(t.offset) % wt->align != 0)
      fail("BAD_TENSOR", name, "is misaligned: it starts at byte " + std::to_string(static_cast<size_t>(t.offset)) +
                                   ", and " + wt->name + " data must start at a multiple of " + std::to_string(wt->align));

    Weight w;
    w.type = wt->id;
    w.data = file_.data() + static_cast<size_t>(t.offset);
    for (int j = 0; j < 4; j++) w.ne[j] = got[j];
    return w;
  }

  const PartSpec& part_;
  const MappedFile& file_;
};

// A MappedFile failure as a LoadError: MappedFile's messages start with the path, which LoadError
// carries apart.
LoadError FileError(const char* code, const std::string& path, const std::exception& e) {
  const std::string m = e.what(), prefix = path + ": ";
  return LoadError(code, path, m.compare(0, prefix.size(), prefix) == 0 ? m.substr(prefix.size()) : m);
}

std::unique_ptr<MappedFile> MapFile(const PartSpec& part) {
  try {
    return std::make_unique<MappedFile>(part.path);
  } catch (const std::runtime_error& e) {
    throw FileError("MAP_FAILED", part.path, e);
  }
}

void LockFile(MappedFile& file) {
  try {
    file.lock();
  } catch (const std::runtime_error& e) {
    throw FileError("LOCK_FAILED", file.path(), e);
  }
}

GemmaConfig ReadGemmaConfig(const PartSpec& part) {
  const ConfigSource c(part, "text");
  GemmaConfig g;
  g.n_layers = c.integer("nLayers");
  g.hidden = c.integer("hidden");
  g.n_heads = c.integer("nHeads");
  g.n_kv_heads = c.integer("nKvHeads");
  g.head_dim = c.integer("headDim");
  g.ffn = c.integer("ffn");
  g.vocab = c.integer("vocab");
  g.context = c.integer("context");
  g.eps = static_cast<float>(c.number("eps"));
  g.rope_theta = static_cast<float>(c.number("ropeTheta"));
  if (g.n_heads % g.n_kv_heads != 0 || g.head_dim % 2 != 0) c.fail("nHeads must be a multiple of nKvHeads, and headDim even");
  return g;
}

// Tensor names are lib/model/arch/gemma.ts's.
GemmaWeights BindGemmaWeights(const GemmaConfig& c, const TensorSource& t) {
  const int64_t H = c.hidden, Q = int64_t(c.n_heads) * c.head_dim, KV = int64_t(c.n_kv_heads) * c.head_dim;
  GemmaWeights w;
  w.token_embd = t.weight("token_embd.weight", {H, c.vocab});
  w.output_norm = t.f32("output_norm.weight", {H});
  for (int i = 0; i < c.n_layers; i++) {
    const std::string p = "blk." + std::to_string(i) + ".";
    GemmaLayer L;
    L.attn_norm = t.f32(p + "attn_norm.weight", {H});
    L.attn_q = t.weight(p + "attn_q.weight", {H, Q});
    L.attn_k = t.weight(p + "attn_k.weight", {H, KV});
    L.attn_v = t.weight(p + "attn_v.weight", {H, KV});
    L.attn_output = t.weight(p + "attn_output.weight", {Q, H});
    L.ffn_norm = t.f32(p + "ffn_norm.weight", {H});
    L.ffn_gate = t.weight(p + "ffn_gate.weight", {H, c.ffn});
    L.ffn_up = t.weight(p + "ffn_up.weight", {H, c.ffn});
    L.ffn_down = t.weight(p + "ffn_down.weight", {c.ffn, H});
    w.layers.push_back(L);
  }
  return w;
}

SiglipConfig ReadSiglipConfig(const PartSpec& part) {
  const ConfigSource c(part, "vision");
  SiglipConfig s;
  s.image_size = c.integer("imageSize");
  s.patch = c.integer("patchSize");
  s.hidden = c.integer("hidden");
  s.n_heads = c.integer("nHeads");
  s.ffn = c.integer("ffn");
  s.n_layers = c.integer("nLayers");
  s.projection_dim = c.integer("projectionDim");
  s.eps = static_cast<float>(c.number("eps"));
  if (s.image_size % s.patch != 0 || s.hidden % s.n_heads != 0)
    c.fail("imageSize must be a multiple of patchSize, and hidden of nHeads");
  return s;
}

// Tensor names are lib/model/arch/siglip.ts's canonical ones (lib/model/files.ts resolves variants).
SiglipWeights BindSiglipWeights(const SiglipConfig& c, const TensorSource& t) {
  const int64_t H = c.hidden, F = c.ffn, P = c.patch;
  SiglipWeights w;
  w.patch_w = t.weight("v.patch_embd.weight", {P, P, c.channels, H});
  w.patch_b = t.f32("v.patch_embd.bias", {H});
  w.position = t.f32("v.position_embd.weight", {H, c.n_patches()});
  for (int i = 0; i < c.n_layers; i++) {
    const std::string p = "v.blk." + std::to_string(i) + ".";
    SiglipLayer L;
    L.ln1_w = t.f32(p + "ln1.weight", {H});
    L.ln1_b = t.f32(p + "ln1.bias", {H});
    L.q_w = t.weight(p + "attn_q.weight", {H, H});
    L.q_b = t.f32(p + "attn_q.bias", {H});
    L.k_w = t.weight(p + "attn_k.weight", {H, H});
    L.k_b = t.f32(p + "attn_k.bias", {H});
    L.v_w = t.weight(p + "attn_v.weight", {H, H});
    L.v_b = t.f32(p + "attn_v.bias", {H});
    L.out_w = t.weight(p + "attn_out.weight", {H, H});
    L.out_b = t.f32(p + "attn_out.bias", {H});
    L.ln2_w = t.f32(p + "ln2.weight", {H});
    L.ln2_b = t.f32(p + "ln2.bias", {H});
    L.fc1_w = t.weight(p + "ffn_up.weight", {H, F});
    L.fc1_b = t.f32(p + "ffn_up.bias", {F});
    L.fc2_w = t.weight(p + "ffn_down.weight", {F, H});
    L.fc2_b = t.f32(p + "ffn_down.bias", {H});
    w.layers.push_back(L);
  }
  w.post_ln_w = t.f32("v.post_ln.weight", {H});
  w.post_ln_b = t.f32("v.post_ln.bias", {H});
  w.proj_w = t.weight("mm.0.weight", {H, c.projection_dim});
  w.proj_b = t.f32("mm.0.bias", {c.projection_dim});
  return w;
}

}  // namespace

std::unique_ptr<PaliGemma> load_paligemma(const ModelSpec& spec) {
  std::unique_ptr<MappedFile> text_file, vision_file;
  std::unique_ptr<GemmaModel> gemma;
  std::unique_ptr<SiglipModel> siglip;
  if (spec.text) {
    const GemmaConfig c = ReadGemmaConfig(*spec.text);
    text_file = MapFile(*spec.text);
    gemma = std::make_unique<GemmaModel>(c, BindGemmaWeights(c, TensorSource(*spec.text, *text_file)));
  }
  if (spec.vision) {
    const SiglipConfig c = ReadSiglipConfig(*spec.vision);
    vision_file = MapFile(*spec.vision);
    siglip = std::make_unique<SiglipModel>(c, BindSiglipWeights(c, TensorSource(*spec.vision, *vision_file)));
  }
  // Locking reads every page: only once every tensor has been found good.
  if (spec.lock_memory) {
    if (text_file) LockFile(*text_file);
    if (vision_file) LockFile(*vision_file);
  }
  return std::make_unique<PaliGemma>(std::move(text_file), std::move(gemma), std::move(vision_file), std::move(siglip),
                                     spec.kernels, spec.threads);
}

}  // namespace pg
