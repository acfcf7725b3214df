#include "paligemma.h"

#include <cmath>
#include <cstring>

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

void PaliGemma::encode_images(const float* pixels, int n_images, float* vision_out, float* features) {
  siglip_->encode(kernels_, pool_.get(), pixels, n_images, vision_out, features);
}

PaliGemma::Slot& PaliGemma::slot(int i) {
  if (slots_.size() <= static_cast<size_t>(i)) slots_.resize(i + 1);
  Slot& s = slots_[i];
  if (!s.seq) s.seq = std::make_unique<GemmaSequence>(gemma_->config());
  return s;
}

bool PaliGemma::start_prefill(int i, const float* features, int n_image, const int32_t* ids, int n_ids, int layers,
                              int logits_rows, bool capture, PrefillOutput* out) {
  Slot& s = slot(i);
  const size_t H = gemma_->config().hidden;
  const int n = n_image + n_ids;
  auto p = std::make_unique<PendingPrefill>();
  p->n = n;
  p->logits_rows = logits_rows;
  p->x.resize(static_cast<size_t>(n) * H);
  float* x = p->x.data();
  // As the reference does it, in float32: image rows / sqrt(H), then every row × sqrt(H).
  const float norm = std::sqrt(static_cast<float>(H));
  for (size_t j = 0; j < static_cast<size_t>(n_image) * H; j++) x[j] = features[j] / norm;
  gemma_->embed(kernels_, ids, n_ids, x + static_cast<size_t>(n_image) * H);
  kernels_->scale(x, norm, x, static_cast<size_t>(n) * H);
  if (capture) {
    p->capture = std::make_unique<GemmaCapture>();
    p->capture->decoder_input = p->x;
  }
  // The whole prompt is the bidirectional prefix.
  s.seq->length = 0;
  s.seq->prefix_len = n;
  s.prefill = std::move(p);
  return run_prefill(s, layers, out);
}

bool PaliGemma::continue_prefill(int i, int layers, PrefillOutput* out) { return run_prefill(slots_[i], layers, out); }

bool PaliGemma::run_prefill(Slot& s, int layers, PrefillOutput* out) {
  PendingPrefill& p = *s.prefill;
  const int n_layers = gemma_->config().n_layers;
  const int end = layers < n_layers - p.layers_done ? p.layers_done + layers : n_layers;
  const std::vector<SequenceSpan> span = {{s.seq.get(), 0, p.n}};
  gemma_->run_layers(kernels_, pool_.get(), p.x.data(), p.n, span, p.layers_done, end, p.capture.get());
  p.layers_done = end;
  if (end < n_layers) return false;
  out->logits.resize(static_cast<size_t>(p.logits_rows) * gemma_->config().vocab);
  gemma_->finish(kernels_, pool_.get(), p.x.data(), p.n, span, out->logits.data(), p.logits_rows, p.capture.get());
  out->capture = std::move(p.capture);
  s.prefill.reset();
  return true;
}

void PaliGemma::decode(const std::vector<int>& slots, const int32_t* ids, float* logits) {
  const GemmaConfig& c = gemma_->config();
  const int n = static_cast<int>(slots.size());
  std::vector<SequenceSpan> spans;
  spans.reserve(slots.size());
  for (int b = 0; b < n; b++) spans.push_back({slots_[slots[b]].seq.get(), b, 1});
  decode_x_.resize(static_cast<size_t>(n) * c.hidden);
  float* x = decode_x_.data();
  gemma_->embed(kernels_, ids, n, x);
  kernels_->scale(x, std::sqrt(static_cast<float>(c.hidden)), x, decode_x_.size());
  gemma_->run_layers(kernels_, pool_.get(), x, n, spans, 0, c.n_layers, nullptr);
  gemma_->finish(kernels_, pool_.get(), x, n, spans, logits, 1, nullptr);
}

PaliGemma::SlotState PaliGemma::slot_state(int i) const {
  if (i < 0 || static_cast<size_t>(i) >= slots_.size() || !slots_[i].seq) return SlotState::kEmpty;
  if (slots_[i].prefill) return SlotState::kPrefilling;
  return slots_[i].seq->length > 0 ? SlotState::kReady : SlotState::kEmpty;
}

int PaliGemma::slot_length(int i) const { return slot_state(i) == SlotState::kEmpty ? 0 : slots_[i].seq->length; }

void PaliGemma::release_slots(int keep) {
  if (slots_.size() > static_cast<size_t>(keep)) slots_.resize(keep);
}

void PaliGemma::release_slot(int i) {
  if (static_cast<size_t>(i) < slots_.size()) slots_[i] = Slot{};
}

}  // namespace pg
