#include "siglip.h"
#include "parallel.h"

#include "../errors.h"

#include <cmath>
#include <cstring>

namespace pg {

SiglipModel::SiglipModel(const SiglipConfig& config, const SiglipWeights& weights) : config_(config), w_(weights) {}

void SiglipModel::ensure_rows(size_t rows) {
  if (rows <= rows_) return;
  const size_t H = config_.hidden;
  const char* what = "the vision tower's activations";
  resize_buffer(x_, rows * H, what);
  resize_buffer(xb_, rows * H, what);
  resize_buffer(q_, rows * H, what);
  resize_buffer(k_, rows * H, what);
  resize_buffer(v_, rows * H, what);
  resize_buffer(att_, rows * H, what);
  resize_buffer(mlp_, rows * config_.ffn, what);
  rows_ = rows;
}

void SiglipModel::encode(const KernelTable* k, ThreadPool* pool, const float* pixels, int n_images,
                         float* vision_out, float* features) {
  const auto& c = config_;
  const size_t P = c.n_patches(), H = c.hidden, F = c.ffn;
  const size_t N = P * n_images;  // rows of the whole batch
  const size_t image_pixels = static_cast<size_t>(c.channels) * c.image_size * c.image_size;
  ensure_rows(N);
  float *x = x_.data(), *xb = xb_.data();

  // embeddings: conv patches + learned position embedding, per image
  for (int b = 0; b < n_images; b++) {
    float* xi = x + b * P * H;
    k->patch_embed(pool, pixels + b * image_pixels, c.channels, c.image_size, c.image_size, c.patch,
                   w_.patch_w.data, w_.patch_w.type, w_.patch_b.f32(), xi, c.hidden);
    parallel_add(k, pool, xi, w_.position.f32(), xi, P * H);
  }

  AttentionShape shape{};
  shape.n_q = P;
  shape.n_kv = P;
  shape.n_heads = c.n_heads;
  shape.n_kv_heads = c.n_heads;
  shape.head_dim = c.hidden / c.n_heads;
  shape.q_stride = shape.kv_stride = shape.out_stride = H;
  shape.mask = MASK_FULL;
  shape.scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));

  for (const SiglipLayer& L : w_.layers) {
    // self-attention (pre-LN)
    parallel_layernorm(k, pool, x, H, L.ln1_w.f32(), L.ln1_b.f32(), xb, H, N, H, c.eps);
    matmul(k, pool, xb, H, L.q_w, L.q_b.f32(), q_.data(), H, N);
    matmul(k, pool, xb, H, L.k_w, L.k_b.f32(), k_.data(), H, N);
    matmul(k, pool, xb, H, L.v_w, L.v_b.f32(), v_.data(), H, N);
    for (int b = 0; b < n_images; b++) {
      const size_t off = b * P * H;
      k->attention(pool, shape, q_.data() + off, k_.data() + off, v_.data() + off, att_.data() + off);
    }
    matmul(k, pool, att_.data(), H, L.out_w, L.out_b.f32(), xb, H, N);
    parallel_add(k, pool, x, xb, x, N * H);

    // MLP (pre-LN): fc1 -> tanh-GELU -> fc2
    parallel_layernorm(k, pool, x, H, L.ln2_w.f32(), L.ln2_b.f32(), xb, H, N, H, c.eps);
    matmul(k, pool, xb, H, L.fc1_w, L.fc1_b.f32(), mlp_.data(), F, N);
    parallel_gelu_tanh(k, pool, mlp_.data(), mlp_.data(), N * F);
    matmul(k, pool, mlp_.data(), F, L.fc2_w, L.fc2_b.f32(), xb, H, N);
    parallel_add(k, pool, x, xb, x, N * H);
  }

  parallel_layernorm(k, pool, x, H, w_.post_ln_w.f32(), w_.post_ln_b.f32(), xb, H, N, H, c.eps);
  if (vision_out) std::memcpy(vision_out, xb, sizeof(float) * N * H);
  matmul(k, pool, xb, H, w_.proj_w, w_.proj_b.f32(), features, c.projection_dim, N);
}

}  // namespace pg
