// PaliGemma: the SigLIP tower with its projector, the Gemma decoder, and the way the reference joins
// them. A prompt is the image's projected features, then the token embeddings (<bos>, the task
// prefix, "\n"); attention is bidirectional over that whole prefix and causal after it. In float32 as
// the reference does it: image rows are divided by sqrt(hidden), then every row is multiplied by
// sqrt(hidden) (the Gemma embedding scale).
//
// Sequences are numbered slots, each with a KV cache; a prefill (re)starts one, a decode step
// continues several at once. A prefill may run its layers in several calls, so that a long prompt
// does not hold up the decode steps of running sequences for more than a few layers: the attention
// over the prefix is bidirectional, so a prompt cannot be split by tokens, only by layers.
//
// Each call checks the mapped file it reads before it runs (has it changed since it was mapped?)
// and after (did it change during the call, or did a pool task stop on a fault in its map, the file
// cut short?): each fails with CodedError MODEL_FILE_CHANGED naming the file.
//
// Nothing here is thread-safe: one call at a time (native/bind_model.cc sees to it), except
// kv_cache_bytes(), which may be read while a call runs.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "../threadpool.h"
#include "gemma.h"
#include "mapped_file.h"
#include "siglip.h"

namespace pg {

// Most images per vision batch, and sequence slots per model.
constexpr int kMaxBatch = 64;

// What a prefill delivers when its last layer has run.
struct PrefillOutput {
  std::vector<float> logits;  // (logits_rows, vocab): the prompt's last rows
  std::vector<int32_t> top_ids;  // (prompt rows, top_k), when top_k > 0: each row's best logits
  std::vector<float> top_logits;
  std::unique_ptr<GemmaCapture> capture;  // every intermediate, when asked for
};

// What a prefill asks for besides the logits of the last row.
struct PrefillOptions {
  int layers = 1 << 30;  // layers to run now (continue_prefill runs the rest)
  int logits_rows = 1;   // whole logit rows of the prompt's last rows
  int top_k = 0;         // > 0: the top_k logits of every prompt row
  bool capture = false;  // every intermediate
  int capacity = 0;      // KV positions to make room for at once (the prompt's and the tokens expected after it)
};

class PaliGemma {
 public:
  // The text model and, optionally, the tower; each keeps its mapped file alive.
  PaliGemma(std::unique_ptr<MappedFile> text_file, std::unique_ptr<GemmaModel> gemma,
            std::unique_ptr<MappedFile> vision_file, std::unique_ptr<SiglipModel> siglip,
            const KernelTable* kernels, int threads);

  const GemmaConfig* text_config() const { return gemma_ ? &gemma_->config() : nullptr; }
  const SiglipConfig* vision_config() const { return siglip_ ? &siglip_->config() : nullptr; }
  const KernelTable* kernels() const { return kernels_; }
  int threads() const { return pool_->size(); }

  // pixels: n_images × (3, S, S) → vision_out n_images × (patches, vision hidden) (may be null) and
  // features n_images × (patches, text hidden): the tower's output and the projector's.
  void encode_images(const float* pixels, int n_images, float* vision_out, float* features);

  // Starts sequence `slot` anew with a prompt of n_image image rows (`features`, (n_image, hidden),
  // as encode_images gives them) then the tokens `ids`, and runs `opts.layers` of its layers.
  // Returns true when the prefill is complete (then `out` is filled).
  bool start_prefill(int slot, const float* features, int n_image, const int32_t* ids, int n_ids,
                     const PrefillOptions& opts, PrefillOutput* out);
  // Runs the next `layers` layers of slot's prefill; as start_prefill.
  bool continue_prefill(int slot, int layers, PrefillOutput* out);

  // One decode step: appends ids[b] to sequence slots[b] for every b, in one pass over the weights,
  // and writes each one's next-token logits to logits (slots.size(), vocab).
  void decode(const std::vector<int>& slots, const int32_t* ids, float* logits);

  // What a slot holds: nothing, a prefill in progress, or a sequence that decode() may continue.
  enum class SlotState { kEmpty, kPrefilling, kReady };
  SlotState slot_state(int slot) const;
  // Positions a ready or prefilling slot holds.
  int slot_length(int slot) const;
  // Frees the slots >= keep (their KV caches and any prefill in progress).
  void release_slots(int keep);
  // Frees one slot (its KV cache and any prefill in progress); the others keep theirs.
  void release_slot(int slot);
  // Bytes of a slot's KV cache (0 for an empty slot); safe to read while a call runs.
  size_t kv_cache_bytes(int slot) const { return slots_[slot].kv_bytes.load(std::memory_order_relaxed); }

 private:
  // A prefill between its calls: the prompt rows' residual stream and how far it has come.
  struct PendingPrefill {
    std::vector<float> x;  // (n, hidden)
    int n = 0;
    int layers_done = 0;
    int logits_rows = 1;
    int top_k = 0;
    std::unique_ptr<GemmaCapture> capture;
  };
  struct Slot {
    std::unique_ptr<GemmaSequence> seq;
    std::unique_ptr<PendingPrefill> prefill;
    std::atomic<size_t> kv_bytes{0};  // seq's cache, for kv_cache_bytes()
  };

  // Slot i, with a sequence: the one place sequences are created.
  Slot& slot(int i);
  bool run_prefill(Slot& s, int layers, PrefillOutput* out);
  // Before a call that reads `file`: throws MODEL_FILE_CHANGED when it changed since it was mapped.
  void begin_call(const MappedFile& file);
  // After it: the same when it changed during the call (written to: the results may mix old and new
  // weights; cut short: a pool task stopped on a fault in the map).
  void end_call(const MappedFile& file);

  const KernelTable* kernels_;
  std::unique_ptr<MappedFile> text_file_, vision_file_;
  std::unique_ptr<GemmaModel> gemma_;
  std::unique_ptr<SiglipModel> siglip_;
  std::unique_ptr<ThreadPool> pool_;
  std::array<Slot, kMaxBatch> slots_;  // fixed: kv_cache_bytes() reads them while a call runs
  std::vector<float> decode_x_;  // (batch, hidden): a decode step's rows
};

}  // namespace pg
