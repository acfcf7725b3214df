// The Gemma decoder of PaliGemma: layer loop over the kernel table, with per-sequence KV caches.
// One pass runs rows of one or several sequences together, so a batched decode step reads every
// weight once for the whole batch. A pass may run its layers in several calls (a prefill that gives
// way to decode steps in between), the rows' residual stream kept by the caller.
#pragma once

#include <cstdlib>
#include <memory>
#include <vector>

#include "weights.h"

namespace pg {

struct GemmaConfig {
  int n_layers = 0;
  int hidden = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int ffn = 0;
  int vocab = 0;    // rows of token_embd (the tied output matrix)
  int context = 0;  // maximum sequence length
  float eps = 1e-6f;
  float rope_theta = 10000.0f;
};

struct GemmaLayer {
  Weight attn_norm;                   // (hidden) F32, Gemma's +1 folded in
  Weight attn_q, attn_k, attn_v;      // (n_heads*head_dim, hidden), (n_kv_heads*head_dim, hidden) x2
  Weight attn_output;                 // (hidden, n_heads*head_dim)
  Weight ffn_norm;                    // (hidden) F32
  Weight ffn_gate, ffn_up, ffn_down;  // (ffn, hidden) x2, (hidden, ffn)
};

struct GemmaWeights {
  Weight token_embd;  // (vocab, hidden): input embedding and tied output matrix
  std::vector<GemmaLayer> layers;
  Weight output_norm;  // (hidden) F32
};

// One sequence's KV cache: (n_layers, context, n_kv_heads*head_dim) for keys and for values.
// calloc'd, so pages are only touched as positions fill (first touch is slow on some machines).
// The constructor is the one place that sizes and allocates it.
class GemmaSequence {
 public:
  explicit GemmaSequence(const GemmaConfig& c);

  int length = 0;       // positions filled (a pass's rows count once its last layer has run)
  int prefix_len = 0;   // positions every later position may attend to bidirectionally
  float* keys(int layer) const { return k_.get() + static_cast<size_t>(layer) * layer_stride_; }
  float* values(int layer) const { return v_.get() + static_cast<size_t>(layer) * layer_stride_; }

 private:
  struct FreeDeleter {
    void operator()(float* p) const { std::free(p); }
  };
  size_t layer_stride_;
  std::unique_ptr<float[], FreeDeleter> k_, v_;
};

// Rows [first_row, first_row + n_rows) of a forward pass belong to `seq` and continue it.
struct SequenceSpan {
  GemmaSequence* seq;
  int first_row;
  int n_rows;
};

// Optional copies of intermediate activations, for tests and tooling.
struct GemmaCapture {
  std::vector<float> decoder_input;  // (n, hidden): the rows fed to the first layer
  std::vector<float> layer_out;      // (n_layers, n, hidden): residual stream after each layer
  std::vector<float> final_hidden;   // (n, hidden): after the final norm
};

class GemmaModel {
 public:
  GemmaModel(const GemmaConfig& config, const GemmaWeights& weights) : config_(config), w_(weights) {}

  const GemmaConfig& config() const { return config_; }

  // A pass over n rows x (n, hidden), already scaled by sqrt(hidden), each continuing its span's
  // sequence at the next positions: run_layers() for every layer, in one call or several, then
  // finish(). Within a span, rows attend to the sequence's positions below max(prefix_len, own
  // position + 1), where a span's prefix_len is set by the caller on the sequence (a prefill sets
  // it to its own length: PaliGemma's bidirectional prefix). Between the calls of one pass, other
  // passes may run on other sequences.

  // Runs layers [first, end) on x in place (the residual stream); fills capture->layer_out.
  void run_layers(const KernelTable* k, ThreadPool* pool, float* x, int n, const std::vector<SequenceSpan>& spans,
                  int first, int end, GemmaCapture* capture);

  // After the last layer: the spans' sequences take their rows, and `logits` gets the logits of each
  // span's last row ((spans, vocab)), or of the last `logits_rows` rows of a single span when
  // logits_rows > 1. Fills capture->final_hidden.
  void finish(const KernelTable* k, ThreadPool* pool, const float* x, int n, const std::vector<SequenceSpan>& spans,
              float* logits, int logits_rows, GemmaCapture* capture);

  // Token embedding rows (n, hidden), not yet scaled by sqrt(hidden).
  void embed(const KernelTable* k, const int32_t* ids, int n, float* out) const;

 private:
  void ensure_rows(int n);

  GemmaConfig config_;
  GemmaWeights w_;
  int rows_ = 0;  // rows the scratch buffers hold
  std::vector<float> xb_, q_, kv_, att_, gate_, up_, last_;  // (rows, ...) scratch of one call
  std::vector<int32_t> positions_;
};

}  // namespace pg
