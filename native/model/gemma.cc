#include "gemma.h"
#include "parallel.h"

#include <cmath>
#include <cstring>
#include <new>

namespace pg {

GemmaSequence::GemmaSequence(const GemmaConfig& c)
    : layer_stride_(static_cast<size_t>(c.context) * c.n_kv_heads * c.head_dim),
      k_(static_cast<float*>(std::calloc(layer_stride_ * c.n_layers, sizeof(float)))),
      v_(static_cast<float*>(std::calloc(layer_stride_ * c.n_layers, sizeof(float)))) {
  if (!k_ || !v_) throw std::bad_alloc();
}

void GemmaModel::ensure_rows(int n) {
  if (n <= rows_) return;
  const auto& c = config_;
  const size_t rows = static_cast<size_t>(n);
  xb_.resize(rows * c.hidden);
  q_.resize(rows * c.n_heads * c.head_dim);
  kv_.resize(rows * 2 * c.n_kv_heads * c.head_dim);
  att_.resize(rows * c.n_heads * c.head_dim);
  gate_.resize(rows * c.ffn);
  up_.resize(rows * c.ffn);
  last_.resize(rows * c.hidden);
  positions_.resize(rows);
  rows_ = n;
}

void GemmaModel::embed(const KernelTable* k, const int32_t* ids, int n, float* out) const {
  k->embed_rows(w_.token_embd.data, w_.token_embd.type, config_.hidden, ids, n, out, config_.hidden);
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
  if (capture) capture->layer_out.resize(static_cast<size_t>(c.n_layers) * n * H);

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
    matmul(k, pool, xb, H, L.ffn_up, nullptr, up_.data(), F, n);
    parallel_geglu(k, pool, gate_.data(), up_.data(), gate_.data(), n * F);
    matmul(k, pool, gate_.data(), F, L.ffn_down, nullptr, xb, H, n);
    parallel_add(k, pool, x, xb, x, n * H);

    if (capture) std::memcpy(capture->layer_out.data() + static_cast<size_t>(l) * n * H, x, sizeof(float) * n * H);
  }
}

void GemmaModel::finish(const KernelTable* k, ThreadPool* pool, const float* x, int n,
                        const std::vector<SequenceSpan>& spans, float* logits, int logits_rows,
                        GemmaCapture* capture) {
  const auto& c = config_;
  const size_t H = c.hidden;
  ensure_rows(n);
  float* xb = xb_.data();
  for (const SequenceSpan& s : spans) s.seq->length += s.n_rows;

  parallel_rmsnorm(k, pool, x, H, w_.output_norm.f32(), xb, H, n, H, c.eps);
  if (capture) capture->final_hidden.assign(xb, xb + static_cast<size_t>(n) * H);

  // logits: every requested row of a single span, else each span's last row
  if (logits_rows > 1 && spans.size() == 1) {
    const SequenceSpan& s = spans[0];
    const size_t first = static_cast<size_t>(s.first_row + s.n_rows - logits_rows);
    matmul(k, pool, xb + first * H, H, w_.token_embd, nullptr, logits, c.vocab, logits_rows);
    return;
  }
  float* last = last_.data();
  for (size_t i = 0; i < spans.size(); i++)
    std::memcpy(last + i * H, xb + static_cast<size_t>(spans[i].first_row + spans[i].n_rows - 1) * H, H * sizeof(float));
  matmul(k, pool, last, H, w_.token_embd, nullptr, logits, c.vocab, spans.size());
}

}  // namespace pg
