// The NativeModel class (lib/native.ts types it): argument conversion and Promises around
// native/model/paligemma.h. Every heavy call runs off the JS thread; calls on one model must not
// overlap (lib/model serialises them; a call while busy is rejected here). Every failure reaches JS
// as an error with a code where it has one (async.h's ToJsError), never as an abort.
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "async.h"
#include "bind.h"
#include "errors.h"
#include "kernels/variants.h"
#include "model/load.h"

namespace pg {
namespace {

// ---- the spec: JS values to plain ones; load.cc checks what they say ----

double NumberOr(const Napi::Value& v, double fallback) { return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback; }

// {path, config: {key: number}, tensors: {name: {offset, type, dims}}}
std::unique_ptr<PartSpec> ReadPart(const Napi::Value& value, const char* what) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, std::string("spec.") + what + " must be an object");
  const Napi::Object o = value.As<Napi::Object>();
  if (!o.Get("path").IsString()) throw Napi::TypeError::New(env, std::string("spec.") + what + ".path must be a string");
  if (!o.Get("config").IsObject() || !o.Get("tensors").IsObject())
    throw Napi::TypeError::New(env, std::string("spec.") + what + ".config and .tensors must be objects");
  auto part = std::make_unique<PartSpec>();
  part->path = o.Get("path").As<Napi::String>().Utf8Value();
  const Napi::Object config = o.Get("config").As<Napi::Object>();
  const Napi::Array keys = config.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    const std::string key = keys.Get(i).ToString().Utf8Value();
    part->config[key] = NumberOr(config.Get(key), NAN);
  }
  const Napi::Object tensors = o.Get("tensors").As<Napi::Object>();
  const Napi::Array names = tensors.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    const std::string name = names.Get(i).ToString().Utf8Value();
    const Napi::Value t = tensors.Get(name);
    if (!t.IsObject()) continue;  // reported as missing
    const Napi::Object to = t.As<Napi::Object>();
    TensorSpec spec{NumberOr(to.Get("offset"), NAN), NumberOr(to.Get("type"), NAN), {}};
    if (to.Get("dims").IsArray()) {
      const Napi::Array dims = to.Get("dims").As<Napi::Array>();
      for (uint32_t d = 0; d < dims.Length() && d < 8; d++) spec.dims.push_back(NumberOr(dims.Get(d), NAN));
    }
    part->tensors[name] = std::move(spec);
  }
  return part;
}

template <class Array, class T>
Array ToJs(Napi::Env env, const std::vector<T>& v) {
  auto a = Array::New(env, v.size());
  std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

// Whole logit rows a prefill may return at once: a long prompt's rows would be gigabytes (use
// opts.topK for every row's best logits).
constexpr size_t kMaxLogitsBytes = size_t(256) << 20;

// An optional integer option `key` of `o` in [min, max].
int IntOption(const Napi::Object& o, const char* key, int fallback, int min, int max) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  const double d = NumberOr(v, NAN);
  if (!(d >= min && d <= max) || d != std::floor(d))
    throw Napi::RangeError::New(o.Env(), std::string("opts.") + key + " must be an integer in " + std::to_string(min) +
                                             ".." + std::to_string(max));
  return static_cast<int>(d);
}

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&ModelWrap::Guard<&ModelWrap::EncodeImages>>("encodeImages"),
                        InstanceMethod<&ModelWrap::Guard<&ModelWrap::Prefill>>("prefill"),
                        InstanceMethod<&ModelWrap::Guard<&ModelWrap::ContinuePrefill>>("continuePrefill"),
                        InstanceMethod<&ModelWrap::Guard<&ModelWrap::Decode>>("decode"),
                        InstanceMethod<&ModelWrap::Guard<&ModelWrap::ReleaseSequences>>("releaseSequences"),
                        InstanceMethod<&ModelWrap::Guard<&ModelWrap::ReleaseSequence>>("releaseSequence"),
                        InstanceMethod<&ModelWrap::Guard<&ModelWrap::KvCacheBytes>>("kvCacheBytes"),
                        InstanceMethod<&ModelWrap::Guard<&ModelWrap::Dispose>>("dispose"),
                        InstanceAccessor<&ModelWrap::Simd>("simd"),
                        InstanceAccessor<&ModelWrap::Threads>("threads")});
  }

  // new NativeModel({ text: {path, config, tensors}, vision?: {...}, threads?, simd?, lockMemory? })
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "NativeModel(spec): spec must be an object");
    const Napi::Object o = info[0].As<Napi::Object>();
    ModelSpec spec;
    spec.kernels = default_variant().table();
    if (o.Get("simd").IsString()) {
      std::string error;
      const Variant* v = find_variant(o.Get("simd").As<Napi::String>().Utf8Value(), error);
      if (!v) throw Napi::Error::New(env, error);
      spec.kernels = v->table();
    }
    if (!o.Get("threads").IsUndefined()) spec.threads = IntOption(o, "threads", 0, 0, 1024);
    spec.lock_memory = o.Get("lockMemory").ToBoolean();
    spec.text = ReadPart(o.Get("text"), "text");
    spec.vision = ReadPart(o.Get("vision"), "vision");
    kernels_ = spec.kernels;
    try {
      try {
        model_ = load_paligemma(spec);
      } catch (const ThreadStartError& e) {  // named by the option that asked for the threads
        const std::string option = spec.threads > 0 ? "option threads: " + std::to_string(spec.threads)
                                                    : "one per physical core, the default of option threads";
        throw CodedError("THREAD_LIMIT", "",
                         "cannot start the model's " + std::to_string(e.requested) + " threads (" + option + "): " +
                             e.reason + " after " + std::to_string(e.started) +
                             "; the process may not create more threads or has no address space left for their "
                             "stacks (ulimit -u, ulimit -v, a container's pids limit): lower `threads`");
      }
    } catch (...) {
      throw ToJsError(env, std::current_exception(), "loading the model");
    }
  }

 private:
  // A guarded method (bind.h's Guarded, for methods).
  template <Napi::Value (ModelWrap::*M)(const Napi::CallbackInfo&)>
  Napi::Value Guard(const Napi::CallbackInfo& info) {
    return RunGuarded(info, [&] { return (this->*M)(info); });
  }

  // A job finished: the model is free again, and released if dispose() came meanwhile.
  void Release() {
    busy_ = false;
    if (disposed_) model_.reset();
  }

  // The model, for a call that needs its text model or its tower; throws when disposed, busy or absent.
  PaliGemma& Model(Napi::Env env, bool vision) {
    if (disposed_) throw Napi::Error::New(env, "the model has been disposed");
    if (busy_) throw Napi::Error::New(env, "the model is busy: calls on one model must not overlap");
    if (vision ? !model_->vision_config() : !model_->text_config())
      throw Napi::Error::New(env, vision ? "this model has no vision tower (no projector file was loaded)"
                                         : "this model has no text model");
    return *model_;
  }

  // Runs `work` on the model off the JS thread; `done` builds the result on the JS thread, given
  // this object and then the arrays `written` that the work writes (kept alive until then). The job
  // holds the model (shared): if this object goes away first (its environment shutting down), the
  // model lives until the work is done, and is freed then.
  Napi::Value Run(const Napi::CallbackInfo& info, const char* name, std::function<void(PaliGemma&)> work,
                  std::function<Napi::Value(Napi::Env, const Kept&)> done, Kept written = {}) {
    Napi::Env env = info.Env();
    if (busy_) throw Napi::Error::New(env, "the model is busy: calls on one model must not overlap");
    // The error is carried to the JS thread so that busy_ is cleared on every path.
    auto error = std::make_shared<std::exception_ptr>();
    AsyncJob job;
    job.work = [model = model_, work = std::move(work), error] {
      try {
        work(*model);
      } catch (...) {
        *error = std::current_exception();
      }
    };
    job.complete = [this, done = std::move(done), error](Napi::Env env, const Kept& kept) -> Napi::Value {
      Release();
      if (*error) std::rethrow_exception(*error);
      return done(env, kept);
    };
    job.keep_alive = {info.This()};  // this object outlives its running job (unless its environment ends)
    job.keep_alive.insert(job.keep_alive.end(), written.begin(), written.end());  // and the arrays it writes
    job.name = name;
    Napi::Value promise = RunAsync(env, std::move(job));
    busy_ = true;
    return promise;
  }

  // encodeImages(pixels: Float32Array, B × (3, S, S)) -> Promise<{ visionOut, features }>, B × per image.
  Napi::Value EncodeImages(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const SiglipConfig& c = *Model(env, true).vision_config();
    const size_t image_pixels = size_t(c.channels) * c.image_size * c.image_size;
    if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "pixels must be a Float32Array");
    const size_t len = info[0].As<Napi::TypedArray>().ElementLength();
    if (len == 0 || len % image_pixels != 0 || len / image_pixels > kMaxBatch)
      throw Napi::RangeError::New(env, "pixels must hold 1.." + std::to_string(kMaxBatch) + " images of " +
                                           std::to_string(image_pixels) + " values");
    const int n_images = static_cast<int>(len / image_pixels);
    const float* pixels = TypedArrayArg<float>(info, 0, "pixels", len);
    auto input = std::make_shared<std::vector<float>>();
    resize_buffer(*input, len, "the images' pixels");
    std::memcpy(input->data(), pixels, len * sizeof(float));
    auto vision_out = std::make_shared<std::vector<float>>(), features = std::make_shared<std::vector<float>>();
    const size_t rows = size_t(n_images) * c.n_patches(), vision_hidden = c.hidden, text_hidden = c.projection_dim;
    return Run(
        info, "encodeImages",
        [input, n_images, vision_out, features, rows, vision_hidden, text_hidden](PaliGemma& model) {
          resize_buffer(*vision_out, rows * vision_hidden, "the vision tower's outputs");
          resize_buffer(*features, rows * text_hidden, "the image features");
          model.encode_images(input->data(), n_images, vision_out->data(), features->data());
        },
        [vision_out, features](Napi::Env env, const Kept&) {
          auto o = Napi::Object::New(env);
          o.Set("visionOut", ToJs<Napi::Float32Array>(env, *vision_out));
          o.Set("features", ToJs<Napi::Float32Array>(env, *features));
          return o;
        });
  }

  // A sequence index argument, below kMaxBatch.
  static int SequenceArg(const Napi::CallbackInfo& info, size_t index) {
    const size_t i = SizeArg(info, index, "sequence");
    if (i >= kMaxBatch) throw Napi::RangeError::New(info.Env(), "sequence must be below " + std::to_string(kMaxBatch));
    return static_cast<int>(i);
  }

  // The settled value of a prefill call: { done: false } until its last layer has run, then
  // { done: true, logits, topIds?, topLogits?, decoderInput?, layerOut?, finalHidden? }.
  static Napi::Value PrefillResult(Napi::Env env, bool done, const PrefillOutput& out) {
    auto o = Napi::Object::New(env);
    o.Set("done", Napi::Boolean::New(env, done));
    if (!done) return o;
    o.Set("logits", ToJs<Napi::Float32Array>(env, out.logits));
    if (!out.top_ids.empty()) {
      o.Set("topIds", ToJs<Napi::Int32Array>(env, out.top_ids));
      o.Set("topLogits", ToJs<Napi::Float32Array>(env, out.top_logits));
    }
    if (const GemmaCapture* cap = out.capture.get()) {
      o.Set("decoderInput", ToJs<Napi::Float32Array>(env, cap->decoder_input));
      o.Set("layerOut", ToJs<Napi::Float32Array>(env, cap->layer_out));
      o.Set("finalHidden", ToJs<Napi::Float32Array>(env, cap->final_hidden));
    }
    return o;
  }

  // prefill(sequence, imageFeatures: Float32Array | null, ids: Int32Array,
  //         opts?: { logitsRows?, topK?, capture?, layers?, capacity? }) -> Promise<PrefillResult>
  // Starts `sequence` anew with the image rows then the token rows, and runs `layers` layers
  // (default: all); continuePrefill() runs the rest.
  Napi::Value Prefill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const GemmaConfig& c = *Model(env, false).text_config();
    const size_t H = c.hidden;
    const int seq = SequenceArg(info, 0);
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
    PrefillOptions opts;
    opts.layers = c.n_layers;
    opts.capacity = static_cast<int>(n);
    if (info.Length() > 3 && info[3].IsObject()) {
      const Napi::Object o = info[3].As<Napi::Object>();
      opts.logits_rows = IntOption(o, "logitsRows", 1, 1, static_cast<int>(n));
      opts.top_k = IntOption(o, "topK", 0, 1, c.vocab);
      opts.layers = IntOption(o, "layers", c.n_layers, 1, 1 << 30);
      opts.capacity = IntOption(o, "capacity", static_cast<int>(n), 1, 1 << 30);
      opts.capture = o.Get("capture").ToBoolean();
    }
    if (opts.capacity > c.context) opts.capacity = c.context;
    // Bounded before anything is allocated: whole logit rows, and the captured intermediates.
    const size_t row_bytes = static_cast<size_t>(c.vocab) * sizeof(float);
    if (opts.logits_rows * row_bytes > kMaxLogitsBytes)
      throw Napi::RangeError::New(env, "opts.logitsRows of " + std::to_string(opts.logits_rows) + " rows of " +
                                           std::to_string(c.vocab) + " logits exceeds the limit of " +
                                           std::to_string(kMaxLogitsBytes / row_bytes) +
                                           " rows; ask for every row's best logits with opts.topK");
    if (opts.capture)
      check_buffer_bytes((static_cast<size_t>(c.n_layers) + 2) * n * H * sizeof(float), "the captured intermediates");

    auto features = std::make_shared<std::vector<float>>(feats, feats + n_img * H);
    auto id_copy = std::make_shared<std::vector<int32_t>>(ids, ids + n_ids);
    auto out = std::make_shared<PrefillOutput>();
    auto done = std::make_shared<bool>(false);
    return Run(
        info, "prefill",
        [seq, features, id_copy, n_img, opts, out, done](PaliGemma& model) {
          *done = model.start_prefill(seq, features->data(), static_cast<int>(n_img), id_copy->data(),
                                      static_cast<int>(id_copy->size()), opts, out.get());
        },
        [out, done](Napi::Env env, const Kept&) { return PrefillResult(env, *done, *out); });
  }

  // continuePrefill(sequence, layers?) -> Promise<PrefillResult>: the next `layers` layers (default:
  // the rest) of the sequence's prefill in progress.
  Napi::Value ContinuePrefill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    PaliGemma& model = Model(env, false);
    const int seq = SequenceArg(info, 0);
    if (model.slot_state(seq) != PaliGemma::SlotState::kPrefilling)
      throw Napi::Error::New(env, "continuePrefill(): sequence " + std::to_string(seq) + " has no prefill in progress");
    const int n_layers = model.text_config()->n_layers;
    const int layers = info.Length() > 1 && !info[1].IsUndefined() ? static_cast<int>(SizeArg(info, 1, "layers")) : n_layers;
    if (layers < 1) throw Napi::RangeError::New(env, "layers must be at least 1");
    auto out = std::make_shared<PrefillOutput>();
    auto done = std::make_shared<bool>(false);
    return Run(
        info, "continuePrefill", [seq, layers, out, done](PaliGemma& model) { *done = model.continue_prefill(seq, layers, out.get()); },
        [out, done](Napi::Env env, const Kept&) { return PrefillResult(env, *done, *out); });
  }

  // decode(sequences: Int32Array, ids: Int32Array, into?: Float32Array) -> Promise<Float32Array logits
  // (B × vocab)>: appends ids[b] to sequence sequences[b], all B in one pass over the weights. With
  // `into` (at least B × vocab floats) the step writes the logits there and resolves with undefined: a
  // caller that reuses one array spares each step a fresh array of B megabytes, which would stay
  // resident as garbage until V8 collects it.
  Napi::Value Decode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    PaliGemma& model = Model(env, false);
    const GemmaConfig& c = *model.text_config();
    if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsTypedArray())
      throw Napi::TypeError::New(env, "decode(sequences, ids): both must be Int32Arrays");
    const size_t batch = info[0].As<Napi::TypedArray>().ElementLength();
    if (batch == 0 || batch > kMaxBatch || info[1].As<Napi::TypedArray>().ElementLength() != batch)
      throw Napi::RangeError::New(env, "decode(sequences, ids): 1.." + std::to_string(kMaxBatch) +
                                           " sequences, one id each");
    const int32_t* seq_ids = TypedArrayArg<int32_t>(info, 0, "sequences", batch);
    const int32_t* ids = TypedArrayArg<int32_t>(info, 1, "ids", batch);
    auto slots = std::make_shared<std::vector<int>>();
    for (size_t b = 0; b < batch; b++) {
      const int32_t s = seq_ids[b];
      const PaliGemma::SlotState state = model.slot_state(s);
      if (state == PaliGemma::SlotState::kPrefilling)
        throw Napi::Error::New(env, "decode(): sequence " + std::to_string(s) + " has a prefill in progress");
      if (state != PaliGemma::SlotState::kReady)
        throw Napi::Error::New(env, "decode(): sequence " + std::to_string(s) + " has no prefill");
      for (int other : *slots)
        if (other == s) throw Napi::Error::New(env, "decode(): sequence " + std::to_string(s) + " appears twice");
      if (model.slot_length(s) >= c.context)
        throw Napi::RangeError::New(env, "sequence " + std::to_string(s) + " has reached the context length " +
                                             std::to_string(c.context));
      if (ids[b] < 0 || ids[b] >= c.vocab)
        throw Napi::RangeError::New(env, "token id " + std::to_string(ids[b]) + " is outside the vocabulary");
      slots->push_back(s);
    }
    auto tokens = std::make_shared<std::vector<int32_t>>(ids, ids + batch);
    const size_t vocab = c.vocab;
    // The step writes straight into `into`, or into a new array it resolves with.
    const bool fresh = info.Length() < 3 || info[2].IsUndefined();
    float* into = fresh ? nullptr : TypedArrayArg<float>(info, 2, "decode(): into", batch * vocab);
    const Napi::Value target = fresh ? Napi::Float32Array::New(env, batch * vocab) : info[2];
    if (fresh) into = target.As<Napi::Float32Array>().Data();
    return Run(
        info, "decode", [slots, tokens, into](PaliGemma& model) { model.decode(*slots, tokens->data(), into); },
        [fresh](Napi::Env env, const Kept& kept) { return fresh ? kept[1] : env.Undefined(); }, {target});
  }

  // releaseSequences(keep): frees the KV caches (and prefills in progress) of sequences >= keep.
  Napi::Value ReleaseSequences(const Napi::CallbackInfo& info) {
    const size_t keep = SizeArg(info, 0, "keep");
    if (busy_) throw Napi::Error::New(info.Env(), "the model is busy");
    if (model_) model_->release_slots(static_cast<int>(keep < kMaxBatch ? keep : kMaxBatch));
    return info.Env().Undefined();
  }

  // releaseSequence(sequence): frees that sequence's KV cache (and prefill in progress) only.
  Napi::Value ReleaseSequence(const Napi::CallbackInfo& info) {
    const int seq = SequenceArg(info, 0);
    if (busy_) throw Napi::Error::New(info.Env(), "the model is busy");
    if (model_) model_->release_slot(seq);
    return info.Env().Undefined();
  }

  // kvCacheBytes(sequence?) -> bytes of that sequence's KV cache (0 when it holds none), or of all
  // sequences; callable while a call runs.
  Napi::Value KvCacheBytes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t bytes = 0;
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      const int seq = SequenceArg(info, 0);
      if (model_) bytes = model_->kv_cache_bytes(seq);
    } else if (model_) {
      for (int i = 0; i < kMaxBatch; i++) bytes += model_->kv_cache_bytes(i);
    }
    return Napi::Number::New(env, static_cast<double>(bytes));
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    disposed_ = true;
    if (!busy_) model_.reset();
    return info.Env().Undefined();
  }

  Napi::Value Simd(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernels_->name); }
  Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), model_ ? model_->threads() : 0); }

  const KernelTable* kernels_ = nullptr;
  std::shared_ptr<PaliGemma> model_;  // shared with the running job, which keeps it alive
  bool busy_ = false;
  bool disposed_ = false;
};

}  // namespace

void RegisterModel(Napi::Env env, Napi::Object exports) { exports.Set("NativeModel", ModelWrap::Define(env)); }

}  // namespace pg
