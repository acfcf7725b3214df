// The model handle: mapped GGUF files, the SigLIP and Gemma loops, a thread pool and kernel
// table of its own. Every heavy call runs off the JS thread and returns a Promise; calls on one
// model must not overlap (lib/model serialises them; a call while busy is rejected here).
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "async.h"
#include "bind.h"
#include "kernels/variants.h"
#include "model/gemma.h"
#include "model/mapped_file.h"
#include "model/siglip.h"

namespace pg {
namespace {

// Most images per vision batch and sequences per model (each sequence owns a KV cache).
constexpr size_t kMaxBatch = 64;

// ---- spec parsing: every failure is a JS exception naming the field or tensor ----

double NumberField(const Napi::Object& o, const char* key, const std::string& where) {
  const Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), where + "." + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

int IntField(const Napi::Object& o, const char* key, const std::string& where, int min = 1) {
  const double d = NumberField(o, key, where);
  if (!(d >= min) || d > 1 << 30 || d != std::floor(d))
    throw Napi::RangeError::New(o.Env(), where + "." + key + " must be an integer >= " + std::to_string(min));
  return static_cast<int>(d);
}

std::string ShapeString(const int64_t* ne, int n) {
  std::string s = "[";
  for (int i = 0; i < n; i++) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// Resolves tensors of one mapped file from {name: {offset, type, dims}} and checks their shapes.
class TensorSource {
 public:
  TensorSource(Napi::Object tensors, const MappedFile& file) : tensors_(tensors), file_(file) {}

  // The tensor `name`, which must have exactly the ggml dims `expected` (ne0 first).
  Weight get(const std::string& name, std::initializer_list<int64_t> expected, bool f32_only = false) const {
    Napi::Env env = tensors_.Env();
    const Napi::Value v = tensors_.Get(name);
    if (!v.IsObject()) throw Napi::Error::New(env, file_.path() + ": missing tensor " + name);
    const Napi::Object t = v.As<Napi::Object>();
    const int type = IntField(t, "type", name, 0);
    const WeightType* wt = find_weight_type(type);
    if (!wt) {
      std::string known;
      for (const WeightType& k : kWeightTypes) known += (known.empty() ? "" : ", ") + std::string(k.name);
      throw Napi::Error::New(env, file_.path() + ": tensor " + name + " has ggml type " + std::to_string(type) +
                                      "; the kernels read " + known);
    }
    if (f32_only && wt->id != DT_F32)
      throw Napi::Error::New(env, file_.path() + ": tensor " + name + " must be F32");
    const Napi::Value dv = t.Get("dims");
    if (!dv.IsArray()) throw Napi::TypeError::New(env, name + ".dims must be an array");
    const Napi::Array dims = dv.As<Napi::Array>();
    Weight w;
    w.type = wt->id;
    int64_t got[4] = {1, 1, 1, 1};
    const uint32_t nd = dims.Length();
    if (nd < 1 || nd > 4) throw Napi::Error::New(env, name + ": expected 1..4 dims");
    for (uint32_t i = 0; i < nd; i++) {
      const Napi::Value d = dims.Get(i);
      if (!d.IsNumber() || d.As<Napi::Number>().DoubleValue() < 1 || d.As<Napi::Number>().DoubleValue() > 1e12)
        throw Napi::Error::New(env, name + ": bad dimension");
      got[i] = static_cast<int64_t>(d.As<Napi::Number>().DoubleValue());
    }
    int64_t want[4] = {1, 1, 1, 1};
    int i = 0;
    for (int64_t e : expected) want[i++] = e;
    for (int j = 0; j < 4; j++) {
      if (got[j] != want[j])
        throw Napi::Error::New(env, file_.path() + ": tensor " + name + " has shape " +
                                        ShapeString(got, static_cast<int>(nd)) + ", expected " +
                                        ShapeString(want, static_cast<int>(expected.size())));
    }
    if (got[0] % wt->block != 0)
      throw Napi::Error::New(env, file_.path() + ": tensor " + name + " has rows of " + std::to_string(got[0]) +
                                      " elements, not a multiple of " + wt->name + "'s block of " + std::to_string(wt->block));
    const double offset = NumberField(t, "offset", name);
    const size_t bytes = static_cast<size_t>(got[1] * got[2] * got[3]) * row_bytes(*wt, static_cast<size_t>(got[0]));
    if (!(offset >= 0) || offset + static_cast<double>(bytes) > static_cast<double>(file_.size()))
      throw Napi::Error::New(env, file_.path() + ": tensor " + name + " lies outside the file");
    if (static_cast<size_t>(offset) % wt->align != 0)
      throw Napi::Error::New(env, file_.path() + ": tensor " + name + " is misaligned");
    w.data = file_.data() + static_cast<size_t>(offset);
    for (int j = 0; j < 4; j++) w.ne[j] = got[j];
    return w;
  }

 private:
  Napi::Object tensors_;
  const MappedFile& file_;
};

GemmaConfig ParseGemmaConfig(const Napi::Object& c) {
  GemmaConfig g;
  g.n_layers = IntField(c, "nLayers", "text");
  g.hidden = IntField(c, "hidden", "text");
  g.n_heads = IntField(c, "nHeads", "text");
  g.n_kv_heads = IntField(c, "nKvHeads", "text");
  g.head_dim = IntField(c, "headDim", "text");
  g.ffn = IntField(c, "ffn", "text");
  g.vocab = IntField(c, "vocab", "text");
  g.context = IntField(c, "context", "text");
  g.eps = static_cast<float>(NumberField(c, "eps", "text"));
  g.rope_theta = static_cast<float>(NumberField(c, "ropeTheta", "text"));
  if (g.n_heads % g.n_kv_heads != 0 || g.head_dim % 2 != 0)
    throw Napi::RangeError::New(c.Env(), "text: nHeads must be a multiple of nKvHeads and headDim even");
  return g;
}

GemmaWeights LoadGemmaWeights(const GemmaConfig& c, const TensorSource& t) {
  const int64_t H = c.hidden, Q = int64_t(c.n_heads) * c.head_dim, KV = int64_t(c.n_kv_heads) * c.head_dim;
  GemmaWeights w;
  w.token_embd = t.get("token_embd.weight", {H, c.vocab});
  w.output_norm = t.get("output_norm.weight", {H}, true);
  for (int i = 0; i < c.n_layers; i++) {
    const std::string p = "blk." + std::to_string(i) + ".";
    GemmaLayer L;
    L.attn_norm = t.get(p + "attn_norm.weight", {H}, true);
    L.attn_q = t.get(p + "attn_q.weight", {H, Q});
    L.attn_k = t.get(p + "attn_k.weight", {H, KV});
    L.attn_v = t.get(p + "attn_v.weight", {H, KV});
    L.attn_output = t.get(p + "attn_output.weight", {Q, H});
    L.ffn_norm = t.get(p + "ffn_norm.weight", {H}, true);
    L.ffn_gate = t.get(p + "ffn_gate.weight", {H, c.ffn});
    L.ffn_up = t.get(p + "ffn_up.weight", {H, c.ffn});
    L.ffn_down = t.get(p + "ffn_down.weight", {c.ffn, H});
    w.layers.push_back(L);
  }
  return w;
}

SiglipConfig ParseSiglipConfig(const Napi::Object& c) {
  SiglipConfig s;
  s.image_size = IntField(c, "imageSize", "vision");
  s.patch = IntField(c, "patchSize", "vision");
  s.hidden = IntField(c, "hidden", "vision");
  s.n_heads = IntField(c, "nHeads", "vision");
  s.ffn = IntField(c, "ffn", "vision");
  s.n_layers = IntField(c, "nLayers", "vision");
  s.projection_dim = IntField(c, "projectionDim", "vision");
  s.eps = static_cast<float>(NumberField(c, "eps", "vision"));
  if (s.image_size % s.patch != 0 || s.hidden % s.n_heads != 0)
    throw Napi::RangeError::New(c.Env(), "vision: imageSize must be a multiple of patchSize, hidden of nHeads");
  return s;
}

// Tensor names follow docs/FORMAT.md; lib/model/files.ts maps the variants seen in the wild onto them.
SiglipWeights LoadSiglipWeights(const SiglipConfig& c, const TensorSource& t) {
  const int64_t H = c.hidden, F = c.ffn, P = c.patch;
  SiglipWeights w;
  w.patch_w = t.get("v.patch_embd.weight", {P, P, c.channels, H});
  w.patch_b = t.get("v.patch_embd.bias", {H}, true);
  w.position = t.get("v.position_embd.weight", {H, c.n_patches()}, true);
  for (int i = 0; i < c.n_layers; i++) {
    const std::string p = "v.blk." + std::to_string(i) + ".";
    SiglipLayer L;
    L.ln1_w = t.get(p + "ln1.weight", {H}, true);
    L.ln1_b = t.get(p + "ln1.bias", {H}, true);
    L.q_w = t.get(p + "attn_q.weight", {H, H});
    L.q_b = t.get(p + "attn_q.bias", {H}, true);
    L.k_w = t.get(p + "attn_k.weight", {H, H});
    L.k_b = t.get(p + "attn_k.bias", {H}, true);
    L.v_w = t.get(p + "attn_v.weight", {H, H});
    L.v_b = t.get(p + "attn_v.bias", {H}, true);
    L.out_w = t.get(p + "attn_out.weight", {H, H});
    L.out_b = t.get(p + "attn_out.bias", {H}, true);
    L.ln2_w = t.get(p + "ln2.weight", {H}, true);
    L.ln2_b = t.get(p + "ln2.bias", {H}, true);
    L.fc1_w = t.get(p + "ffn_up.weight", {H, F});
    L.fc1_b = t.get(p + "ffn_up.bias", {F}, true);
    L.fc2_w = t.get(p + "ffn_down.weight", {F, H});
    L.fc2_b = t.get(p + "ffn_down.bias", {H}, true);
    w.layers.push_back(L);
  }
  w.post_ln_w = t.get("v.post_ln.weight", {H}, true);
  w.post_ln_b = t.get("v.post_ln.bias", {H}, true);
  w.proj_w = t.get("mm.0.weight", {H, c.projection_dim});
  w.proj_b = t.get("mm.0.bias", {c.projection_dim}, true);
  return w;
}

Napi::Float32Array ToJs(Napi::Env env, const float* data, size_t n) {
  auto a = Napi::Float32Array::New(env, n);
  std::memcpy(a.Data(), data, n * sizeof(float));
  return a;
}

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&ModelWrap::EncodeImages>("encodeImages"),
                        InstanceMethod<&ModelWrap::Prefill>("prefill"),
                        InstanceMethod<&ModelWrap::Decode>("decode"),
                        InstanceMethod<&ModelWrap::ReleaseSequences>("releaseSequences"),
                        InstanceMethod<&ModelWrap::Dispose>("dispose"),
                        InstanceAccessor<&ModelWrap::Simd>("simd"),
                        InstanceAccessor<&ModelWrap::Threads>("threads")});
  }

  // new NativeModel({ text: {path, config, tensors}, vision?: {...}, threads?, simd?, lockMemory? })
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "NativeModel(spec): spec must be an object");
    const Napi::Object spec = info[0].As<Napi::Object>();
    const int threads = spec.Get("threads").IsNumber() ? IntField(spec, "threads", "spec", 0) : 0;
    kernels_ = default_variant().table();
    if (spec.Get("simd").IsString()) {
      std::string error;
      const Variant* v = find_variant(spec.Get("simd").As<Napi::String>().Utf8Value(), error);
      if (!v) throw Napi::Error::New(env, error);
      kernels_ = v->table();
    }
    const bool lock = spec.Get("lockMemory").ToBoolean();
    try {
      if (spec.Get("text").IsObject()) {
        const Napi::Object t = spec.Get("text").As<Napi::Object>();
        text_file_ = std::make_unique<MappedFile>(t.Get("path").ToString().Utf8Value());
        const GemmaConfig c = ParseGemmaConfig(t.Get("config").As<Napi::Object>());
        gemma_ = std::make_unique<GemmaModel>(c, LoadGemmaWeights(c, TensorSource(t.Get("tensors").As<Napi::Object>(), *text_file_)));
        if (lock) text_file_->lock();
      }
      if (spec.Get("vision").IsObject()) {
        const Napi::Object v = spec.Get("vision").As<Napi::Object>();
        vision_file_ = std::make_unique<MappedFile>(v.Get("path").ToString().Utf8Value());
        const SiglipConfig c = ParseSiglipConfig(v.Get("config").As<Napi::Object>());
        siglip_ = std::make_unique<SiglipModel>(c, LoadSiglipWeights(c, TensorSource(v.Get("tensors").As<Napi::Object>(), *vision_file_)));
        if (lock) vision_file_->lock();
      }
    } catch (const std::runtime_error& e) {  // file and memory errors; Napi::Error passes through
      throw Napi::Error::New(env, e.what());
    }
    pool_ = std::make_unique<ThreadPool>(threads);
  }

 private:
  // A job finished: the model is free again, and freed for good if dispose() came meanwhile.
  void Release() {
    busy_ = false;
    if (disposed_) Free();
  }

  void Free() {
    seqs_.clear();
    gemma_.reset();
    siglip_.reset();
    text_file_.reset();
    vision_file_.reset();
    pool_.reset();
  }

  // Common checks, then runs `work` off the JS thread; `done` builds the result on the JS thread.
  Napi::Value Run(const Napi::CallbackInfo& info, std::function<void()> work,
                  std::function<Napi::Value(Napi::Env)> done) {
    Napi::Env env = info.Env();
    if (disposed_) throw Napi::Error::New(env, "the model has been disposed");
    if (busy_) throw Napi::Error::New(env, "the model is busy: calls on one model must not overlap");
    busy_ = true;
    // The error is carried to the JS thread so that busy_ is cleared on every path.
    auto error = std::make_shared<std::string>();
    AsyncJob job;
    job.work = [work = std::move(work), error] {
      try {
        work();
      } catch (const std::exception& e) {
        *error = e.what()[0] ? e.what() : "native error";
      }
    };
    job.complete = [this, done = std::move(done), error](Napi::Env env, const Kept&) -> Napi::Value {
      Release();
      if (!error->empty()) throw Napi::Error::New(env, *error);
      return done(env);
    };
    job.keep_alive = {info.This()};  // the model outlives its running job
    return RunAsync(env, std::move(job));
  }

  // encodeImages(pixels: Float32Array, B × (3, S, S)) -> Promise<{ visionOut, features }>, B × per image.
  Napi::Value EncodeImages(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (disposed_) throw Napi::Error::New(env, "the model has been disposed");  // before the freed parts are looked at
    if (!siglip_) throw Napi::Error::New(env, "this model has no vision tower (no projector file was loaded)");
    const SiglipConfig& c = siglip_->config();
    const size_t image_pixels = size_t(c.channels) * c.image_size * c.image_size;
    if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "pixels must be a Float32Array");
    const size_t len = info[0].As<Napi::TypedArray>().ElementLength();
    if (len == 0 || len % image_pixels != 0 || len / image_pixels > kMaxBatch)
      throw Napi::RangeError::New(env, "pixels must hold 1.." + std::to_string(kMaxBatch) + " images of " +
                                           std::to_string(image_pixels) + " values");
    const int n_images = static_cast<int>(len / image_pixels);
    const float* pixels = TypedArrayArg<float>(info, 0, "pixels", len);
    auto input = std::make_shared<std::vector<float>>(pixels, pixels + len);
    auto vision_out = std::make_shared<std::vector<float>>(size_t(n_images) * c.n_patches() * c.hidden);
    auto features = std::make_shared<std::vector<float>>(size_t(n_images) * c.n_patches() * c.projection_dim);
    return Run(
        info,
        [this, input, n_images, vision_out, features] {
          siglip_->encode(kernels_, pool_.get(), input->data(), n_images, vision_out->data(), features->data());
        },
        [vision_out, features](Napi::Env env) {
          auto o = Napi::Object::New(env);
          o.Set("visionOut", ToJs(env, vision_out->data(), vision_out->size()));
          o.Set("features", ToJs(env, features->data(), features->size()));
          return o;
        });
  }

  // The sequence with index `i` (an argument), created on first use.
  GemmaSequence* SequenceArg(const Napi::CallbackInfo& info, size_t index) {
    const size_t i = SizeArg(info, index, "sequence");
    if (i >= kMaxBatch) throw Napi::RangeError::New(info.Env(), "sequence must be below " + std::to_string(kMaxBatch));
    if (seqs_.size() <= i) seqs_.resize(i + 1);
    if (!seqs_[i]) seqs_[i] = std::make_unique<GemmaSequence>(gemma_->config());
    return seqs_[i].get();
  }

  // prefill(sequence, imageFeatures: Float32Array | null, ids: Int32Array, opts?: { logitsRows?, capture? })
  //   -> Promise<{ logits, decoderInput?, layerOut?, finalHidden? }>
  // Starts `sequence` anew: image rows (features / sqrt(hidden)), then the token rows; every row
  // × sqrt(hidden); attention is bidirectional over all of them.
  Napi::Value Prefill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (disposed_) throw Napi::Error::New(env, "the model has been disposed");
    if (!gemma_) throw Napi::Error::New(env, "this model has no text model");
    const GemmaConfig& c = gemma_->config();
    const size_t H = c.hidden;
    GemmaSequence* seq = SequenceArg(info, 0);
    size_t n_img = 0;
    const float* feats = nullptr;
    if (info.Length() > 1 && info[1].IsTypedArray()) {
      const size_t len = info[1].As<Napi::TypedArray>().ElementLength();
      if (len % H != 0) throw Napi::RangeError::New(env, "imageFeatures length must be a multiple of the text hidden size");
      n_img = len / H;
      feats = TypedArrayArg<float>(info, 1, "imageFeatures", len);
    } else if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) {
      throw Napi::TypeError::New(env, "imageFeatures must be a Float32Array or null");
    }
    if (info.Length() < 3 || !info[2].IsTypedArray()) throw Napi::TypeError::New(env, "ids must be an Int32Array");
    const size_t n_ids = info[2].As<Napi::TypedArray>().ElementLength();
    const int32_t* ids = TypedArrayArg<int32_t>(info, 2, "ids", n_ids);
    for (size_t i = 0; i < n_ids; i++)
      if (ids[i] < 0 || ids[i] >= c.vocab)
        throw Napi::RangeError::New(env, "token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                                             " is outside the vocabulary (" + std::to_string(c.vocab) + ")");
    const size_t n = n_img + n_ids;
    if (n == 0) throw Napi::RangeError::New(env, "prefill needs at least one row");
    if (n > static_cast<size_t>(c.context))
      throw Napi::RangeError::New(env, "prompt of " + std::to_string(n) + " positions exceeds the context length " +
                                           std::to_string(c.context));
    int logits_rows = 1;
    bool capture = false;
    if (info.Length() > 3 && info[3].IsObject()) {
      const Napi::Object o = info[3].As<Napi::Object>();
      if (o.Get("logitsRows").IsNumber()) logits_rows = IntField(o, "logitsRows", "opts", 0);
      capture = o.Get("capture").ToBoolean();
    }
    if (static_cast<size_t>(logits_rows) > n) throw Napi::RangeError::New(env, "logitsRows exceeds the number of rows");

    auto input = std::make_shared<std::vector<float>>(n * H);
    auto id_copy = std::make_shared<std::vector<int32_t>>(ids, ids + n_ids);
    if (feats) std::memcpy(input->data(), feats, n_img * H * sizeof(float));
    auto logits = std::make_shared<std::vector<float>>(size_t(logits_rows) * c.vocab);
    auto cap = capture ? std::make_shared<GemmaCapture>() : nullptr;
    auto decoder_input = capture ? std::make_shared<std::vector<float>>() : nullptr;
    return Run(
        info,
        [this, seq, input, id_copy, n_img, n, logits, logits_rows, cap, decoder_input] {
          const GemmaConfig& c = gemma_->config();
          const size_t H = c.hidden;
          float* x = input->data();
          // As the reference does it, in float32: image rows / sqrt(H), then every row × sqrt(H).
          const float norm = std::sqrt(static_cast<float>(H));
          for (size_t i = 0; i < n_img * H; i++) x[i] /= norm;
          gemma_->embed(kernels_, id_copy->data(), static_cast<int>(id_copy->size()), x + n_img * H);
          kernels_->scale(x, norm, x, n * H);
          if (decoder_input) decoder_input->assign(x, x + n * H);
          seq->length = 0;
          seq->prefix_len = static_cast<int>(n);
          gemma_->forward(kernels_, pool_.get(), x, static_cast<int>(n), {{seq, 0, static_cast<int>(n)}},
                          logits->data(), logits_rows, cap.get());
        },
        [logits, cap, decoder_input](Napi::Env env) {
          auto o = Napi::Object::New(env);
          o.Set("logits", ToJs(env, logits->data(), logits->size()));
          if (cap) {
            o.Set("decoderInput", ToJs(env, decoder_input->data(), decoder_input->size()));
            o.Set("layerOut", ToJs(env, cap->layer_out.data(), cap->layer_out.size()));
            o.Set("finalHidden", ToJs(env, cap->final_hidden.data(), cap->final_hidden.size()));
          }
          return o;
        });
  }

  // decode(sequences: Int32Array, ids: Int32Array) -> Promise<Float32Array logits (B × vocab)>:
  // appends ids[b] to sequence sequences[b], all B in one pass over the weights.
  Napi::Value Decode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (disposed_) throw Napi::Error::New(env, "the model has been disposed");
    if (!gemma_) throw Napi::Error::New(env, "this model has no text model");
    const GemmaConfig& c = gemma_->config();
    if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsTypedArray())
      throw Napi::TypeError::New(env, "decode(sequences, ids): both must be Int32Arrays");
    const size_t batch = info[0].As<Napi::TypedArray>().ElementLength();
    if (batch == 0 || batch > kMaxBatch || info[1].As<Napi::TypedArray>().ElementLength() != batch)
      throw Napi::RangeError::New(env, "decode(sequences, ids): 1.." + std::to_string(kMaxBatch) +
                                           " sequences, one id each");
    const int32_t* seq_ids = TypedArrayArg<int32_t>(info, 0, "sequences", batch);
    const int32_t* ids = TypedArrayArg<int32_t>(info, 1, "ids", batch);
    auto spans = std::make_shared<std::vector<SequenceSpan>>();
    auto tokens = std::make_shared<std::vector<int32_t>>(ids, ids + batch);
    for (size_t b = 0; b < batch; b++) {
      const int32_t s = seq_ids[b];
      if (s < 0 || static_cast<size_t>(s) >= seqs_.size() || !seqs_[s] || seqs_[s]->length == 0)
        throw Napi::Error::New(env, "decode(): sequence " + std::to_string(s) + " has no prefill");
      for (const SequenceSpan& other : *spans)
        if (other.seq == seqs_[s].get()) throw Napi::Error::New(env, "decode(): sequence " + std::to_string(s) + " appears twice");
      if (seqs_[s]->length >= c.context)
        throw Napi::RangeError::New(env, "sequence " + std::to_string(s) + " has reached the context length " +
                                             std::to_string(c.context));
      if (ids[b] < 0 || ids[b] >= c.vocab)
        throw Napi::RangeError::New(env, "token id " + std::to_string(ids[b]) + " is outside the vocabulary");
      spans->push_back({seqs_[s].get(), static_cast<int>(b), 1});
    }
    auto logits = std::make_shared<std::vector<float>>(batch * c.vocab);
    return Run(
        info,
        [this, spans, tokens, logits] {
          const GemmaConfig& c = gemma_->config();
          const int n = static_cast<int>(tokens->size());
          std::vector<float> x(static_cast<size_t>(n) * c.hidden);
          gemma_->embed(kernels_, tokens->data(), n, x.data());
          kernels_->scale(x.data(), std::sqrt(static_cast<float>(c.hidden)), x.data(), x.size());
          gemma_->forward(kernels_, pool_.get(), x.data(), n, *spans, logits->data(), 1, nullptr);
        },
        [logits](Napi::Env env) { return ToJs(env, logits->data(), logits->size()); });
  }

  // releaseSequences(keep): frees the KV caches of sequences >= keep.
  Napi::Value ReleaseSequences(const Napi::CallbackInfo& info) {
    const size_t keep = SizeArg(info, 0, "keep");
    if (busy_) throw Napi::Error::New(info.Env(), "the model is busy");
    if (seqs_.size() > keep) seqs_.resize(keep);
    return info.Env().Undefined();
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    disposed_ = true;
    if (!busy_) Free();
    return info.Env().Undefined();
  }

  Napi::Value Simd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernels_->name); }
  Napi::Value Threads(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), pool_ ? pool_->size() : 0);
  }

  const KernelTable* kernels_ = nullptr;
  std::unique_ptr<MappedFile> text_file_, vision_file_;
  std::unique_ptr<GemmaModel> gemma_;
  std::vector<std::unique_ptr<GemmaSequence>> seqs_;  // KV caches, by sequence index
  std::unique_ptr<SiglipModel> siglip_;
  std::unique_ptr<ThreadPool> pool_;
  bool busy_ = false;
  bool disposed_ = false;
};

}  // namespace

void RegisterModel(Napi::Env env, Napi::Object exports) { exports.Set("NativeModel", ModelWrap::Define(env)); }

}  // namespace pg
