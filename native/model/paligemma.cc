#include "paligemma.h"

#include <cmath>
#include <cstring>

#include "../errors.h"

namespace pg {

PaliGemma::PaliGemma(std::unique_ptr<MappedFile> text_file, std::unique_ptr<GemmaModel> gemma,
                     std::unique_ptr<MappedFile> vision_file, std::unique_ptr<SiglipModel> siglip,
                     const KernelTable* kernels, int threads)
    : kernels_(kernels),
      text_file_(std::move(text_file)),
      vision_file_(std::move(vision_file)),
      gemma_(std::move(gemma)),
      siglip_(std::move(siglip)),
      pool_(std::make_unique<ThreadPool>(threads)) {}

void PaliGemma::begin_call(const MappedFile& file) {
  file.check();
  pool_->take_fault();  // a fault left by a call that failed otherwise is not this call's
}

void PaliGemma::end_call(const MappedFile& file) {
  const bool faulted = pool_->take_fault();
  file.check(true);  // written to during the call: its results may mix old and new weights
  if (!faulted) return;
  throw CodedError("MODEL_FILE_CHANGED", file.path(),
                   "a page of the mapped file could not be read during the call (an I/O error, or the file was cut "
                   "short and restored); load the model again");
}

void PaliGemma::encode_images(const float* pixels, int n_images, float* vision_out, float* features) {
  begin_call(*vision_file_);
  siglip_->encode(kernels_, pool_.get(), pixels, n_images, vision_out, features);
  end_call(*vision_file_);
}

PaliGemma::Slot& PaliGemma::slot(int i) {
  Slot& s = slots_[i];
  if (!s.seq) s.seq = std::make_unique<GemmaSequence>(gemma_->config());
  return s;
}

bool PaliGemma::start_prefill(int i, const float* features, int n_image, const int32_t* ids, int n_ids,
                              const PrefillOptions& opts, PrefillOutput* out) {
  begin_call(*text_file_);
  Slot& s = slot(i);
  const size_t H = gemma_->config().hidden;
  const int n = n_image + n_ids;
  auto p = std::make_unique<PendingPrefill>();
  p->n = n;
  p->logits_rows = opts.logits_rows;
  p->top_k = opts.top_k;
  resize_buffer(p->x, static_cast<size_t>(n) * H, "the prompt's activations");
  float* x = p->x.data();
  // As the reference does it, in float32: image rows / sqrt(H), then every row × sqrt(H).
  const float norm = std::sqrt(static_cast<float>(H));
  for (size_t j = 0; j < static_cast<size_t>(n_image) * H; j++) x[j] = features[j] / norm;
  gemma_->embed(kernels_, pool_.get(), ids, n_ids, x + static_cast<size_t>(n_image) * H);
  kernels_->scale(x, norm, x, static_cast<size_t>(n) * H);
  if (opts.capture) {
    p->capture = std::make_unique<GemmaCapture>();
    p->capture->decoder_input = p->x;
  }
  // The whole prompt is the bidirectional prefix.
  s.seq->length = 0;
  s.seq->prefix_len = n;
  s.prefill = std::move(p);
  s.seq->reserve(opts.capacity > n ? opts.capacity : n);
  s.kv_bytes.store(s.seq->bytes(), std::memory_order_relaxed);
  const bool done = run_prefill(s, opts.layers, out);
  end_call(*text_file_);
  return done;
}

bool PaliGemma::continue_prefill(int i, int layers, PrefillOutput* out) {
  begin_call(*text_file_);
  const bool done = run_prefill(slots_[i], layers, out);
  end_call(*text_file_);
  return done;
}

bool PaliGemma::run_prefill(Slot& s, int layers, PrefillOutput* out) {
  PendingPrefill& p = *s.prefill;
  const GemmaConfig& c = gemma_->config();
  const int end = layers < c.n_layers - p.layers_done ? p.layers_done + layers : c.n_layers;
  const std::vector<SequenceSpan> span = {{s.seq.get(), 0, p.n}};
  gemma_->run_layers(kernels_, pool_.get(), p.x.data(), p.n, span, p.layers_done, end, p.capture.get());
  s.kv_bytes.store(s.seq->bytes(), std::memory_order_relaxed);
  p.layers_done = end;
  if (end < c.n_layers) return false;
  LogitsRequest want;
  resize_buffer(out->logits, static_cast<size_t>(p.logits_rows) * c.vocab, "the prompt's logit rows");
  want.last = out->logits.data();
  want.last_rows = p.logits_rows;
  if (p.top_k > 0) {
    resize_buffer(out->top_ids, static_cast<size_t>(p.n) * p.top_k, "the prompt's top logits");
    resize_buffer(out->top_logits, static_cast<size_t>(p.n) * p.top_k, "the prompt's top logits");
    want.top_k = p.top_k;
    want.top_ids = out->top_ids.data();
    want.top_values = out->top_logits.data();
  }
  gemma_->finish(kernels_, pool_.get(), p.x.data(), p.n, span, want, p.capture.get());
  out->capture = std::move(p.capture);
  s.prefill.reset();
  return true;
}

void PaliGemma::decode(const std::vector<int>& slots, const int32_t* ids, float* logits) {
  begin_call(*text_file_);
  const GemmaConfig& c = gemma_->config();
  const int n = static_cast<int>(slots.size());
  std::vector<SequenceSpan> spans;
  spans.reserve(slots.size());
  for (int b = 0; b < n; b++) spans.push_back({slots_[slots[b]].seq.get(), b, 1});
  resize_buffer(decode_x_, static_cast<size_t>(n) * c.hidden, "a decode step's activations");
  float* x = decode_x_.data();
  gemma_->embed(kernels_, pool_.get(), ids, n, x);
  kernels_->scale(x, std::sqrt(static_cast<float>(c.hidden)), x, decode_x_.size());
  gemma_->run_layers(kernels_, pool_.get(), x, n, spans, 0, c.n_layers, nullptr);
  for (int slot : slots) slots_[slot].kv_bytes.store(slots_[slot].seq->bytes(), std::memory_order_relaxed);
  LogitsRequest want;
  want.last = logits;
  gemma_->finish(kernels_, pool_.get(), x, n, spans, want, nullptr);
  end_call(*text_file_);
}

PaliGemma::SlotState PaliGemma::slot_state(int i) const {
  if (i < 0 || i >= kMaxBatch || !slots_[i].seq) return SlotState::kEmpty;
  if (slots_[i].prefill) return SlotState::kPrefilling;
  return slots_[i].seq->length > 0 ? SlotState::kReady : SlotState::kEmpty;
}

int PaliGemma::slot_length(int i) const { return slot_state(i) == SlotState::kEmpty ? 0 : slots_[i].seq->length; }

void PaliGemma::release_slots(int keep) {
  for (int i = keep < 0 ? 0 : keep; i < kMaxBatch; i++) release_slot(i);
}

void PaliGemma::release_slot(int i) {
  if (i < 0 || i >= kMaxBatch) return;
  slots_[i].seq.reset();
  slots_[i].prefill.reset();
  slots_[i].kv_bytes.store(0, std::memory_order_relaxed);
}

}  // namespace pg
