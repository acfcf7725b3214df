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

// One sequence's KV cache: keys and values, each (n_layers, capacity, n_kv_heads*head_dim), for as
// many positions as the sequence needs, not the context length (a file may declare any): a prefill
// sizes it for its prompt and the tokens it expects to generate, and a pass that appends beyond
// that grows it. The one place that sizes and allocates a sequence's cache.
class GemmaSequence {
 public:
  explicit GemmaSequence(const GemmaConfig& c);

  int length = 0;       // positions filled (a pass's rows count once its last layer has run)
  int prefix_len = 0;   // positions every later position may attend to bidirectionally
  float* keys(int layer) const { return k_.get() + static_cast<size_t>(layer) * layer_stride(); }
  float* values(int layer) const { return v_.get() + static_cast<size_t>(layer) * layer_stride(); }

  // Room for `positions` positions (at most the context length). Growing takes at least twice the
  // capacity, so the positions copied over a sequence's life stay fewer than its final capacity.
  // Throws OUT_OF_MEMORY (errors.h) naming the cache.
  void reserve(int positions);
  int capacity() const { return capacity_; }
  // The memory the cache holds.
  size_t bytes() const { return 2 * static_cast<size_t>(n_layers_) * layer_stride() * sizeof(float); }

 private:
  struct FreeDeleter {
    void operator()(float* p) const { std::free(p); }
  };
  size_t layer_stride() const { return static_cast<size_t>(capacity_) * kv_dim_; }

  int n_layers_, context_;
  size_t kv_dim_;
  int capacity_ = 0;
  std::unique_ptr<float[], FreeDeleter> k_, v_;
};

// Rows [first_row, first_row + n_rows) of a forward pass belong to `seq` and continue it.
struct SequenceSpan {
  GemmaSequence* seq;
  int first_row;
  int n_rows;
};

// Which logits finish() computes. Logit rows are vocab floats each (1 MiB for PaliGemma), so a
// pass over a long prompt never holds them all: they are computed a bounded chunk of rows at a time.
struct LogitsRequest {
  // (spans, vocab): each span's last row; or, for a single span, its last `last_rows` rows.
  float* last = nullptr;
  int last_rows = 1;
  // A single span, top_k > 0: the top_k logits of each of its rows, best first (ties: lower id
  // first), into top_ids and top_values, (n, top_k) each.
  int top_k = 0;
  int32_t* top_ids = nullptr;
  float* top_values = nullptr;
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

  // After the last layer: the spans' sequences take their rows, and `logits` gets what `want` asks
  // for. Fills capture->final_hidden.
  void finish(const KernelTable* k, ThreadPool* pool, const float* x, int n, const std::vector<SequenceSpan>& spans,
              const LogitsRequest& want, GemmaCapture* capture);

  // Token embedding rows (n, hidden), not yet scaled by sqrt(hidden).
  void embed(const KernelTable* k, ThreadPool* pool, const int32_t* ids, int n, float* out) const;

 private:
  void ensure_rows(int n);
  // The single span's logits rows [first, n) from the normed rows xb, a chunk at a time.
  void row_logits(const KernelTable* k, ThreadPool* pool, const float* xb, int first, int n, const LogitsRequest& want);

  GemmaConfig config_;
  GemmaWeights w_;
  int rows_ = 0;  // rows the scratch buffers hold
  std::vector<float> xb_, q_, kv_, att_, gate_, last_;  // (rows, ...) scratch of one call
  std::vector<float> up_;  // (min(rows, kMaxGemvRows), ffn): a decode step's up product (run_layers)
  std::vector<int32_t> positions_;
};

}  // namespace pg
