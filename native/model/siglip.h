// The SigLIP vision tower and PaliGemma's linear projector: pixels -> image features.
#pragma once

#include <vector>

#include "weights.h"

namespace pg {

struct SiglipConfig {
  int image_size = 0;  // square input, pixels
  int patch = 0;       // patch size = conv kernel = stride
  int channels = 3;
  int hidden = 0;
  int n_heads = 0;
  int ffn = 0;
  int n_layers = 0;
  int projection_dim = 0;  // text hidden size
  float eps = 1e-6f;

  int n_patches() const { return (image_size / patch) * (image_size / patch); }
};

struct SiglipLayer {
  Weight ln1_w, ln1_b;                      // (hidden)
  Weight q_w, q_b, k_w, k_b, v_w, v_b;      // (hidden, hidden), (hidden)
  Weight out_w, out_b;                      // (hidden, hidden), (hidden)
  Weight ln2_w, ln2_b;                      // (hidden)
  Weight fc1_w, fc1_b;                      // (ffn, hidden), (ffn)
  Weight fc2_w, fc2_b;                      // (hidden, ffn), (hidden)
};

struct SiglipWeights {
  Weight patch_w, patch_b;  // ne (patch, patch, channels, hidden), (hidden)
  Weight position;          // (n_patches, hidden) F32
  std::vector<SiglipLayer> layers;
  Weight post_ln_w, post_ln_b;  // (hidden)
  Weight proj_w, proj_b;        // (projection_dim, hidden), (projection_dim)
};

class SiglipModel {
 public:
  SiglipModel(const SiglipConfig& config, const SiglipWeights& weights);

  const SiglipConfig& config() const { return config_; }

  // pixels: n_images × (channels, image_size, image_size), normalised. Writes the tower's output
  // after the post-LayerNorm to `vision_out` (n_images × (n_patches, hidden), may be null) and the
  // projector's output to `features` (n_images × (n_patches, projection_dim)). The images share
  // every matmul (one weight pass for the batch); attention stays within each image.
  void encode(const KernelTable* k, ThreadPool* pool, const float* pixels, int n_images, float* vision_out,
              float* features);

 private:
  void ensure_rows(size_t rows);

  SiglipConfig config_;
  SiglipWeights w_;
  size_t rows_ = 0;
  std::vector<float> x_, xb_, q_, k_, v_, att_, mlp_;
};

}  // namespace pg
