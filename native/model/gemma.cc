#include "gemma.h"
#include "parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "../errors.h"

namespace pg {

namespace {

// a * b, or SIZE_MAX when it overflows (an allocation that size fails its limit check).
size_t SaturatingMul(size_t a, size_t b) { return a != 0 && b > static_cast<size_t>(-1) / a ? static_cast<size_t>(-1) : a * b; }

// Logit rows computed at once when a pass needs many (evaluate's top-k of every prompt row).
constexpr size_t kLogitsChunkBytes = size_t(128) << 20;

// Whether logit (v, i) ranks before (w, j): the larger one, the lower id on ties; NaN last.
inline bool RanksBefore(float v, int32_t i, float w, int32_t j) {
  if (v != v) return w != w && i < j;
  return w != w || v > w || (v == w && i < j);
}

// The k best logits of row[0..n), best first, in ids/values (k <= n). A heap of the k best so far,
// with the worst at its root, kept in the output arrays themselves: no allocation, O(n log k) at
// worst and about O(n) for k much smaller than n.
void SelectTop(const float* row, int n, int k, int32_t* ids, float* values) {
  // Restores the heap below `at` in [0, size): a parent ranks after (is worse than) its children.
  const auto sift_down = [&](int at, int size) {
    for (;;) {
      int worst = at;
      for (int c = 2 * at + 1; c <= 2 * at + 2 && c < size; c++)
        if (RanksBefore(values[worst], ids[worst], values[c], ids[c])) worst = c;
      if (worst == at) return;
      std::swap(values[at], values[worst]);
      std::swap(ids[at], ids[worst]);
      at = worst;
    }
  };
  for (int i = 0; i < k; i++) {  // the first k, heapified as they come
    values[i] = row[i];
    ids[i] = i;
    for (int at = i; at > 0 && RanksBefore(values[(at - 1) / 2], ids[(at - 1) / 2], values[at], ids[at]); at = (at - 1) / 2) {
      std::swap(values[at], values[(at - 1) / 2]);
      std::swap(ids[at], ids[(at - 1) / 2]);
    }
  }
  for (int i = k; i < n; i++) {
    if (!RanksBefore(row[i], i, values[0], ids[0])) continue;
    values[0] = row[i];
    ids[0] = i;
    sift_down(0, k);
  }
  for (int end = k - 1; end > 0; end--) {  // heap sort: the worst goes last
    std::swap(values[0], values[end]);
    std::swap(ids[0], ids[end]);
    sift_down(0, end);
  }
}

// gate = geglu(gate, x · wᵀ) over the n rows of a pass (gate rows w.rows() apart). The GEMM folds the
// up product into the gate as it finishes each piece of it (MatmulArgs::geglu), so that a prompt's up
// product, as large as its gate product (64 KB a row), is never held; a decode step's few rows go
// through `up` (kMaxGemvRows rows).
void up_geglu(const KernelTable* k, ThreadPool* pool, const float* x, size_t ldx, const Weight& w, float* gate, size_t n,
              float* up) {
  const size_t F = w.rows();
  if (n > kMaxGemvRows) {
    MatmulArgs a = matmul_args(x, ldx, w, nullptr, gate, F, n);
    a.geglu = k->geglu;
    k->gemm(pool, a);
  } else {
    matmul(k, pool, x, ldx, w, nullptr, up, F, n);
    parallel_geglu(k, pool, gate, up, gate, n * F);
  }
}

}  // namespace

GemmaSequence::GemmaSequence(const GemmaConfig& c)
    : n_layers_(c.n_layers), context_(c.context), kv_dim_(static_cast<size_t>(c.n_kv_heads) * c.head_dim) {}

void GemmaSequence::reserve(int positions) {
  if (positions <= capacity_) return;
  const int doubled = capacity_ > context_ / 2 ? context_ : 2 * capacity_;
  const int capacity = positions > doubled ? positions : doubled;
  const size_t stride = SaturatingMul(static_cast<size_t>(capacity), kv_dim_);
  const size_t bytes = SaturatingMul(SaturatingMul(stride, static_cast<size_t>(n_layers_)), sizeof(float));
  const std::string what = "a KV cache of " + std::to_string(capacity) + " positions";
  check_buffer_bytes(SaturatingMul(bytes, 2), what);
  std::unique_ptr<float[], FreeDeleter> k(static_cast<float*>(std::malloc(bytes)));
  std::unique_ptr<float[], FreeDeleter> v(static_cast<float*>(std::malloc(bytes)));
  if (!k || !v) throw OutOfMemory(what, 2 * bytes);
  // Every position held so far (a layered prefill may have filled some layers beyond `length`).
  const size_t old_stride = layer_stride();
  for (int l = 0; l < n_layers_ && old_stride > 0; l++) {
    std::memcpy(k.get() + l * stride, k_.get() + l * old_stride, old_stride * sizeof(float));
    std::memcpy(v.get() + l * stride, v_.get() + l * old_stride, old_stride * sizeof(float));
  }
  k_ = std::move(k);
  v_ = std::move(v);
  capacity_ = capacity;
}

void GemmaModel::ensure_rows(int n) {
  if (n <= rows_) return;
  const auto& c = config_;
  const size_t rows = static_cast<size_t>(n);
  const char* what = "the decoder's activations";
  resize_buffer(xb_, rows * c.hidden, what);
  resize_buffer(q_, rows * c.n_heads * c.head_dim, what);
  resize_buffer(kv_, rows * 2 * c.n_kv_heads * c.head_dim, what);
  resize_buffer(att_, rows * c.n_heads * c.head_dim, what);
  resize_buffer(gate_, rows * c.ffn, what);
  resize_buffer(up_, std::min(rows, kMaxGemvRows) * c.ffn, what);
  resize_buffer(last_, rows * c.hidden, what);
  resize_buffer(positions_, rows, what);
  rows_ = n;
}

void GemmaModel::embed(const KernelTable* k, ThreadPool* pool, const int32_t* ids, int n, float* out) const {
  // As a pool task: it reads the mapped token_embd, so it runs under the pool's fault guard.
  struct Ctx {
    const KernelTable* k;
    const GemmaModel* m;
    const int32_t* ids;
    int n;
    float* out;
  } ctx{k, this, ids, n, out};
  pool->run(1, [](void* p, int, int) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    const GemmaConfig& cfg = c.m->config_;
    c.k->embed_rows(c.m->w_.token_embd.data, c.m->w_.token_embd.type, cfg.hidden, c.ids, c.n, c.out, cfg.hidden);
  }, &ctx);
}

void GemmaModel::run_layers(const KernelTable* k, ThreadPool* pool, float* x, int n,
                            const std::vector<SequenceSpan>& spans, int first, int end, GemmaCapture* capture) {
  const auto& c = config_;
  const size_t H = c.hidden, QD = static_cast<size_t>(c.n_heads) * c.head_dim;
  const size_t KVD = static_cast<size_t>(c.n_kv_heads) * c.head_dim, F = c.ffn;
  ensure_rows(n);
  float *xb = xb_.data(), *q = q_.data(), *att = att_.data();
  float *kn = kv_.data(), *vn = kv_.data() + static_cast<size_t>(n) * KVD;  // this pass's new keys, values
  // Hugging Face's PaliGemma numbers positions from 1; RoPE only sees differences, but matching
  // the reference keeps the rounding identical.
  for (const SequenceSpan& s : spans)
    for (int i = 0; i < s.n_rows; i++) positions_[s.first_row + i] = s.seq->length + i + 1;
  // The rows join their sequences' caches (room made here, the one place a pass appends).
  for (const SequenceSpan& s : spans) s.seq->reserve(s.seq->length + s.n_rows);
  if (capture) resize_buffer(capture->layer_out, static_cast<size_t>(c.n_layers) * n * H, "the captured layer outputs");

  AttentionShape shape{};
  shape.n_heads = c.n_heads;
  shape.n_kv_heads = c.n_kv_heads;
  shape.head_dim = c.head_dim;
  shape.q_stride = QD;
  shape.kv_stride = KVD;
  shape.out_stride = QD;
  shape.mask = MASK_PREFIX;
  shape.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  for (int l = first; l < end; l++) {
    const GemmaLayer& L = w_.layers[l];

    // self-attention: the new keys and values join each sequence's cache
    parallel_rmsnorm(k, pool, x, H, L.attn_norm.f32(), xb, H, n, H, c.eps);
    matmul(k, pool, xb, H, L.attn_q, nullptr, q, QD, n);
    matmul(k, pool, xb, H, L.attn_k, nullptr, kn, KVD, n);
    matmul(k, pool, xb, H, L.attn_v, nullptr, vn, KVD, n);
    parallel_rope_neox(k, pool, q, QD, n, c.n_heads, c.head_dim, positions_.data(), c.rope_theta);
    parallel_rope_neox(k, pool, kn, KVD, n, c.n_kv_heads, c.head_dim, positions_.data(), c.rope_theta);
    for (const SequenceSpan& s : spans) {
      GemmaSequence& seq = *s.seq;
      const size_t at = static_cast<size_t>(seq.length) * KVD, rows = static_cast<size_t>(s.n_rows) * KVD;
      std::memcpy(seq.keys(l) + at, kn + s.first_row * KVD, rows * sizeof(float));
      std::memcpy(seq.values(l) + at, vn + s.first_row * KVD, rows * sizeof(float));
      shape.n_q = s.n_rows;
      shape.n_kv = seq.length + s.n_rows;
      shape.q_pos0 = seq.length;
      shape.prefix_len = seq.prefix_len;
      k->attention(pool, shape, q + s.first_row * QD, seq.keys(l), seq.values(l), att + s.first_row * QD);
    }
    matmul(k, pool, att, QD, L.attn_output, nullptr, xb, H, n);
    parallel_add(k, pool, x, xb, x, n * H);

    // feed-forward: GeGLU
    parallel_rmsnorm(k, pool, x, H, L.ffn_norm.f32(), xb, H, n, H, c.eps);
    matmul(k, pool, xb, H, L.ffn_gate, nullptr, gate_.data(), F, n);
    up_geglu(k, pool, xb, H, L.ffn_up, gate_.data(), n, up_.data());
    matmul(k, pool, gate_.data(), F, L.ffn_down, nullptr, xb, H, n);
    parallel_add(k, pool, x, xb, x, n * H);

    if (capture) std::memcpy(capture->layer_out.data() + static_cast<size_t>(l) * n * H, x, sizeof(float) * n * H);
  }
}

void GemmaModel::finish(const KernelTable* k, ThreadPool* pool, const float* x, int n,
                        const std::vector<SequenceSpan>& spans, const LogitsRequest& want, GemmaCapture* capture) {
  const auto& c = config_;
  const size_t H = c.hidden;
  ensure_rows(n);
  float* xb = xb_.data();
  for (const SequenceSpan& s : spans) s.seq->length += s.n_rows;

  parallel_rmsnorm(k, pool, x, H, w_.output_norm.f32(), xb, H, n, H, c.eps);
  if (capture) capture->final_hidden.assign(xb, xb + static_cast<size_t>(n) * H);

  if (spans.size() == 1 && (want.last_rows > 1 || want.top_k > 0)) {
    const SequenceSpan& s = spans[0];
    row_logits(k, pool, xb + static_cast<size_t>(s.first_row) * H, want.top_k > 0 ? 0 : s.n_rows - want.last_rows, s.n_rows, want);
    return;
  }
  // each span's last row
  float* last = last_.data();
  for (size_t i = 0; i < spans.size(); i++)
    std::memcpy(last + i * H, xb + static_cast<size_t>(spans[i].first_row + spans[i].n_rows - 1) * H, H * sizeof(float));
  matmul(k, pool, last, H, w_.token_embd, nullptr, want.last, c.vocab, spans.size());
}

void GemmaModel::row_logits(const KernelTable* k, ThreadPool* pool, const float* xb, int first, int n,
                            const LogitsRequest& want) {
  const size_t H = config_.hidden, V = config_.vocab;
  const int full_from = n - want.last_rows;  // rows from here on go to want.last whole
  if (want.top_k == 0) {  // only whole rows: straight into the output
    matmul(k, pool, xb + static_cast<size_t>(first) * H, H, w_.token_embd, nullptr, want.last, V, n - first);
    return;
  }
  const size_t chunk_rows = std::max<size_t>(1, std::min<size_t>(n - first, kLogitsChunkBytes / (V * sizeof(float))));
  std::vector<float> chunk;
  resize_buffer(chunk, chunk_rows * V, "a chunk of logit rows");
  for (int r0 = first; r0 < n; r0 += static_cast<int>(chunk_rows)) {
    const int rows = std::min(n - r0, static_cast<int>(chunk_rows));
    matmul(k, pool, xb + static_cast<size_t>(r0) * H, H, w_.token_embd, nullptr, chunk.data(), V, rows);
    for (int r = std::max(r0, full_from); r < r0 + rows; r++)
      std::memcpy(want.last + static_cast<size_t>(r - full_from) * V, chunk.data() + static_cast<size_t>(r - r0) * V, V * sizeof(float));
    const size_t K = static_cast<size_t>(want.top_k);
    for_ranges(pool, rows, 1, [&](size_t a, size_t b) {
      for (size_t r = a; r < b; r++)
        SelectTop(chunk.data() + r * V, static_cast<int>(V), want.top_k, want.top_ids + (r0 + r) * K, want.top_values + (r0 + r) * K);
    });
  }
}

}  // namespace pg
