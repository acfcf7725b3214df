// JS bindings of the non-matmul kernels (attention, norms, activations, RoPE, row gather), for
// tests and benchmarks: TypedArrays in, a fresh Float32Array out. Every size, stride
// and id is checked here, so the kernels may assume valid arguments.
#include <cmath>
#include <cstring>
#include <new>

#include "../bind.h"
#include "testing.h"

namespace pg {
namespace {

constexpr size_t kMaxOutput = size_t(1) << 30;  // elements in one result array (4 GiB)
constexpr double kMaxInt = 2147483647.0;

// Elements a strided block of `rows` rows of `width` needs: (rows - 1) · stride + width. In double
// so absurd strides compare as "too many" instead of wrapping around.
double SpanOf(size_t rows, size_t stride, size_t width) {
  return rows == 0 ? 0.0 : static_cast<double>(rows - 1) * static_cast<double>(stride) + static_cast<double>(width);
}

Napi::Float32Array NewResult(Napi::Env env, const char* fn, double elements) {
  if (elements > static_cast<double>(kMaxOutput))
    throw Napi::RangeError::New(env, std::string(fn) + ": result would have " + std::to_string((long long)elements) +
                                         " elements, more than the limit of " + std::to_string(kMaxOutput));
  return Napi::Float32Array::New(env, static_cast<size_t>(elements));
}

size_t LengthOf(const Napi::CallbackInfo& info, size_t index) {
  return info[index].As<Napi::TypedArray>().ElementLength();
}

// A number argument that must be finite.
float FiniteArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (index >= info.Length() || !info[index].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  const double d = info[index].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw Napi::RangeError::New(info.Env(), std::string(what) + " must be finite");
  return static_cast<float>(d);
}

// An integer argument in [lo, hi].
size_t IntArg(const Napi::CallbackInfo& info, size_t index, const char* what, size_t lo, size_t hi) {
  const size_t v = SizeArg(info, index, what);
  if (v < lo || v > hi)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be in [" + std::to_string(lo) + ", " +
                                                std::to_string(hi) + "], got " + std::to_string(v));
  return v;
}

// Runs a kernel, turning an allocation failure into a JS exception instead of an abort.
template <typename F>
void Run(Napi::Env env, const char* fn, F&& f) {
  try {
    f();
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, std::string(fn) + ": out of memory");
  }
}

// --- attention(q, k, v, shape, simd?) ---

// shape[name] as an integer in [lo, hi]; `fallback` when absent (required when fallback < 0).
int64_t ShapeInt(Napi::Env env, const Napi::Object& shape, const char* name, double lo, double hi, int64_t fallback) {
  const Napi::Value v = shape.Get(name);
  if (v.IsUndefined()) {
    if (fallback < 0) throw Napi::TypeError::New(env, std::string("attention: shape.") + name + " is required");
    return fallback;
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("attention: shape.") + name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != std::floor(d))
    throw Napi::RangeError::New(env, std::string("attention: shape.") + name + " must be an integer in [" +
                                         std::to_string((long long)lo) + ", " + std::to_string((long long)hi) +
                                         "], got " + v.ToString().Utf8Value());
  return static_cast<int64_t>(d);
}

Napi::Value AttentionJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[3].IsObject() || info[3].IsArray())
    throw Napi::TypeError::New(env, "attention: shape must be an object");
  const Napi::Object o = info[3].As<Napi::Object>();
  AttentionShape s;
  s.n_q = (int)ShapeInt(env, o, "nQ", 1, kMaxInt, -1);
  s.n_kv = (int)ShapeInt(env, o, "nKv", 1, kMaxInt, -1);
  s.n_heads = (int)ShapeInt(env, o, "nHeads", 1, 65536, -1);
  s.n_kv_heads = (int)ShapeInt(env, o, "nKvHeads", 1, 65536, -1);
  s.head_dim = (int)ShapeInt(env, o, "headDim", 1, 65536, -1);
  if (s.n_heads % s.n_kv_heads != 0)
    throw Napi::RangeError::New(env, "attention: shape.nHeads (" + std::to_string(s.n_heads) +
                                         ") must be a multiple of shape.nKvHeads (" + std::to_string(s.n_kv_heads) + ")");
  const size_t q_width = (size_t)s.n_heads * s.head_dim, kv_width = (size_t)s.n_kv_heads * s.head_dim;
  const double max_stride = 9007199254740991.0;
  s.q_stride = (size_t)ShapeInt(env, o, "qStride", (double)q_width, max_stride, (int64_t)q_width);
  s.kv_stride = (size_t)ShapeInt(env, o, "kvStride", (double)kv_width, max_stride, (int64_t)kv_width);
  s.out_stride = (size_t)ShapeInt(env, o, "outStride", (double)q_width, max_stride, (int64_t)q_width);

  const Napi::Value mask = o.Get("mask");
  const std::string mask_name = mask.IsString() ? mask.As<Napi::String>().Utf8Value() : "";
  if (mask_name != "full" && mask_name != "causal" && mask_name != "prefix")
    throw Napi::TypeError::New(env, "attention: shape.mask must be 'full', 'causal' or 'prefix'");
  // Causal attention is a prefix of length 0.
  s.mask = mask_name == "full" ? MASK_FULL : MASK_PREFIX;
  const int64_t prefix_len = ShapeInt(env, o, "prefixLen", 0, kMaxInt, mask_name == "prefix" ? -1 : 0);
  s.prefix_len = mask_name == "prefix" ? (int)prefix_len : 0;
  s.q_pos0 = (int)ShapeInt(env, o, "qPos0", 0, kMaxInt - s.n_q, 0);
  const Napi::Value sc = o.Get("scale");
  if (sc.IsUndefined()) {
    s.scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  } else {
    if (!sc.IsNumber() || !std::isfinite(sc.As<Napi::Number>().DoubleValue()))
      throw Napi::TypeError::New(env, "attention: shape.scale must be a finite number");
    s.scale = sc.As<Napi::Number>().FloatValue();
  }

  const double q_need = SpanOf(s.n_q, s.q_stride, q_width), kv_need = SpanOf(s.n_kv, s.kv_stride, kv_width);
  const char* names[3] = {"attention: q", "attention: k", "attention: v"};
  const double needs[3] = {q_need, kv_need, kv_need};
  const float* arrays[3];
  for (int i = 0; i < 3; i++) {
    arrays[i] = TypedArrayArg<float>(info, i, names[i], 0);
    if (static_cast<double>(LengthOf(info, i)) < needs[i])
      throw Napi::RangeError::New(env, std::string(names[i]) + " has " + std::to_string(LengthOf(info, i)) +
                                           " elements, the shape needs " + std::to_string((long long)needs[i]));
  }
  const KernelTable* kt = KernelsArg(info, 4);
  Napi::Float32Array out = NewResult(env, "attention", static_cast<double>(s.n_q) * static_cast<double>(s.out_stride));
  Run(env, "attention", [&] { kt->attention(SharedPool(), s, arrays[0], arrays[1], arrays[2], out.Data()); });
  return out;
}

// --- norms: layerNorm(x, w, b, rows, dim, eps, ldx, ldy, simd?), rmsNorm(x, w, rows, dim, eps, ldx, ldy, simd?) ---

struct NormArgs {
  size_t rows, dim, ldx, ldy;
  float eps;
};

// Reads rows, dim, eps, ldx, ldy starting at argument `first` and checks x (argument 0) against them.
NormArgs ReadNormArgs(const Napi::CallbackInfo& info, const char* fn, size_t first) {
  const std::string f(fn);
  NormArgs a;
  a.rows = IntArg(info, first, (f + ": rows").c_str(), 0, (size_t)kMaxInt);
  a.dim = IntArg(info, first + 1, (f + ": dim").c_str(), 1, kMaxOutput);
  a.eps = FiniteArg(info, first + 2, (f + ": eps").c_str());
  if (a.eps < 0) throw Napi::RangeError::New(info.Env(), f + ": eps must be >= 0");
  a.ldx = IntArg(info, first + 3, (f + ": ldx").c_str(), a.dim, kMaxOutput);
  a.ldy = IntArg(info, first + 4, (f + ": ldy").c_str(), a.dim, kMaxOutput);
  TypedArrayArg<float>(info, 0, (f + ": x").c_str(), 0);
  if (static_cast<double>(LengthOf(info, 0)) < SpanOf(a.rows, a.ldx, a.dim))
    throw Napi::RangeError::New(info.Env(), f + ": x has " + std::to_string(LengthOf(info, 0)) + " elements, " +
                                                std::to_string(a.rows) + " rows of stride " + std::to_string(a.ldx) +
                                                " need " + std::to_string((long long)SpanOf(a.rows, a.ldx, a.dim)));
  return a;
}

Napi::Value LayerNormJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const NormArgs a = ReadNormArgs(info, "layerNorm", 3);
  const float* x = TypedArrayArg<float>(info, 0, "layerNorm: x", 0);
  const float* w = TypedArrayArg<float>(info, 1, "layerNorm: weight", a.dim);
  const float* b = TypedArrayArg<float>(info, 2, "layerNorm: bias", a.dim);
  const KernelTable* kt = KernelsArg(info, 8);
  Napi::Float32Array y = NewResult(env, "layerNorm", static_cast<double>(a.rows) * static_cast<double>(a.ldy));
  kt->layernorm(x, a.ldx, w, b, y.Data(), a.ldy, a.rows, a.dim, a.eps);
  return y;
}

Napi::Value RmsNormJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const NormArgs a = ReadNormArgs(info, "rmsNorm", 2);
  const float* x = TypedArrayArg<float>(info, 0, "rmsNorm: x", 0);
  const float* w = TypedArrayArg<float>(info, 1, "rmsNorm: weight", a.dim);
  const KernelTable* kt = KernelsArg(info, 7);
  Napi::Float32Array y = NewResult(env, "rmsNorm", static_cast<double>(a.rows) * static_cast<double>(a.ldy));
  kt->rmsnorm(x, a.ldx, w, y.Data(), a.ldy, a.rows, a.dim, a.eps);
  return y;
}

// --- elementwise: geluTanh(x), geglu(gate, up), add(a, b), scale(x, s) ---

Napi::Value GeluTanhJs(const Napi::CallbackInfo& info) {
  const float* x = TypedArrayArg<float>(info, 0, "geluTanh: x", 0);
  const size_t n = LengthOf(info, 0);
  const KernelTable* kt = KernelsArg(info, 1);
  Napi::Float32Array y = Napi::Float32Array::New(info.Env(), n);
  kt->gelu_tanh(x, y.Data(), n);
  return y;
}

// The two same-length operands of a binary elementwise op.
size_t PairLength(const Napi::CallbackInfo& info, const char* fn, const char* a, const char* b) {
  const std::string f(fn);
  TypedArrayArg<float>(info, 0, (f + ": " + a).c_str(), 0);
  TypedArrayArg<float>(info, 1, (f + ": " + b).c_str(), 0);
  const size_t n = LengthOf(info, 0);
  if (LengthOf(info, 1) != n)
    throw Napi::RangeError::New(info.Env(), f + ": " + a + " has " + std::to_string(n) + " elements but " + b +
                                                " has " + std::to_string(LengthOf(info, 1)));
  return n;
}

Napi::Value GegluJs(const Napi::CallbackInfo& info) {
  const size_t n = PairLength(info, "geglu", "gate", "up");
  const KernelTable* kt = KernelsArg(info, 2);
  Napi::Float32Array y = Napi::Float32Array::New(info.Env(), n);
  kt->geglu(TypedArrayArg<float>(info, 0, "geglu: gate", n), TypedArrayArg<float>(info, 1, "geglu: up", n), y.Data(),
            n);
  return y;
}

Napi::Value AddJs(const Napi::CallbackInfo& info) {
  const size_t n = PairLength(info, "add", "a", "b");
  const KernelTable* kt = KernelsArg(info, 2);
  Napi::Float32Array y = Napi::Float32Array::New(info.Env(), n);
  kt->add(TypedArrayArg<float>(info, 0, "add: a", n), TypedArrayArg<float>(info, 1, "add: b", n), y.Data(), n);
  return y;
}

Napi::Value ScaleJs(const Napi::CallbackInfo& info) {
  const float* x = TypedArrayArg<float>(info, 0, "scale: x", 0);
  const size_t n = LengthOf(info, 0);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "scale: s must be a number");
  const float s = info[1].As<Napi::Number>().FloatValue();
  const KernelTable* kt = KernelsArg(info, 2);
  Napi::Float32Array y = Napi::Float32Array::New(info.Env(), n);
  kt->scale(x, s, y.Data(), n);
  return y;
}

// --- in place on a copy: ropeNeox(x, rows, nHeads, headDim, ld, positions, theta) ---

// A fresh copy of the Float32Array argument 0.
Napi::Float32Array CopyOfX(const Napi::CallbackInfo& info, const char* what) {
  const float* x = TypedArrayArg<float>(info, 0, what, 0);
  const size_t n = LengthOf(info, 0);
  Napi::Float32Array y = Napi::Float32Array::New(info.Env(), n);
  if (n) std::memcpy(y.Data(), x, n * sizeof(float));
  return y;
}

Napi::Value RopeNeoxJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TypedArrayArg<float>(info, 0, "ropeNeox: x", 0);
  const size_t rows = IntArg(info, 1, "ropeNeox: rows", 0, (size_t)kMaxInt);
  const size_t n_heads = IntArg(info, 2, "ropeNeox: nHeads", 1, 65536);
  const size_t head_dim = IntArg(info, 3, "ropeNeox: headDim", 2, 65536);
  if (head_dim % 2) throw Napi::RangeError::New(env, "ropeNeox: headDim must be even, got " + std::to_string(head_dim));
  const size_t ld = IntArg(info, 4, "ropeNeox: ld", n_heads * head_dim, kMaxOutput);
  const int32_t* pos = TypedArrayArg<int32_t>(info, 5, "ropeNeox: positions", rows);
  const float theta = FiniteArg(info, 6, "ropeNeox: theta");
  if (!(theta > 0)) throw Napi::RangeError::New(env, "ropeNeox: theta must be > 0");
  if (static_cast<double>(LengthOf(info, 0)) < SpanOf(rows, ld, n_heads * head_dim))
    throw Napi::RangeError::New(env, "ropeNeox: x has " + std::to_string(LengthOf(info, 0)) + " elements, " +
                                         std::to_string(rows) + " rows of stride " + std::to_string(ld) + " need " +
                                         std::to_string((long long)SpanOf(rows, ld, n_heads * head_dim)));
  const KernelTable* kt = KernelsArg(info, 7);
  Napi::Float32Array y = CopyOfX(info, "ropeNeox: x");
  kt->rope_neox(y.Data(), ld, rows, (int)n_heads, (int)head_dim, pos, theta);
  return y;
}

// --- embedRows(table, type, dim, ids, simd?) ---

Napi::Value EmbedRowsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const WeightType& type = WeightTypeArg(info, 1, "embedRows: type");
  const std::string table_name = "embedRows: an " + info[1].As<Napi::String>().Utf8Value() + " table";
  size_t len = 0;
  const void* table = WeightArrayArg(info, 0, type, table_name.c_str(), &len);
  const size_t dim = IntArg(info, 2, "embedRows: dim", 1, kMaxOutput);
  if (len % dim || dim % type.block)
    throw Napi::RangeError::New(env, "embedRows: table length " + std::to_string(len) + " is not a multiple of dim " +
                                         std::to_string(dim));
  const size_t rows = len / dim;
  const int32_t* ids = TypedArrayArg<int32_t>(info, 3, "embedRows: ids", 0);
  const size_t n = LengthOf(info, 3);
  for (size_t i = 0; i < n; i++) {
    if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= rows)
      throw Napi::RangeError::New(env, "embedRows: ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                                           " is outside the table's " + std::to_string(rows) + " rows");
  }
  const KernelTable* kt = KernelsArg(info, 4);
  Napi::Float32Array out = NewResult(env, "embedRows", static_cast<double>(n) * static_cast<double>(dim));
  kt->embed_rows(table, type.id, dim, ids, n, out.Data(), dim);
  return out;
}

}  // namespace

void RegisterOpsTests(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, AttentionJs));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNormJs));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNormJs));
  exports.Set("geluTanh", Napi::Function::New(env, GeluTanhJs));
  exports.Set("geglu", Napi::Function::New(env, GegluJs));
  exports.Set("add", Napi::Function::New(env, AddJs));
  exports.Set("scale", Napi::Function::New(env, ScaleJs));
  exports.Set("ropeNeox", Napi::Function::New(env, RopeNeoxJs));
  exports.Set("embedRows", Napi::Function::New(env, EmbedRowsJs));
}

}  // namespace pg
