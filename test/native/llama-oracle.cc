// The llama.cpp side of test/quant-oracle.test.ts: quantizes rows with llama.cpp's reference
// quantizer and dequantizes the result, both loaded from its libggml-base.so with dlopen.
//
//   llama-oracle <libggml-base.so> <type: q8_0|q4_0|q5_0|q4_K|q6_K|q8_K> <k> <rows.f32> <out.bytes> <out.f32>
//
// rows.f32 holds whole rows of k floats; out.bytes gets the quantized rows, out.f32 their dequantized
// values. Output buffers are zeroed first (quantize_row_q8_K_ref leaves an all-zero block's bsums unset).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

typedef void (*QuantizeFn)(const float* x, void* y, int64_t k);
typedef void (*DequantizeFn)(const void* x, float* y, int64_t k);

static std::vector<char> read_file(const char* path) {
  std::vector<char> data;
  FILE* f = std::fopen(path, "rb");
  if (!f) return data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + n);
  std::fclose(f);
  return data;
}

static bool write_file(const char* path, const void* data, size_t bytes) {
  FILE* f = std::fopen(path, "wb");
  if (!f) return false;
  const bool ok = std::fwrite(data, 1, bytes, f) == bytes;
  return std::fclose(f) == 0 && ok;
}

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: llama-oracle <libggml-base.so> <type> <k> <rows.f32> <out.bytes> <out.f32>\n");
    return 2;
  }
  const std::string type = argv[2];
  const long k = std::atol(argv[3]);
  struct Layout { const char* name; int block; int bytes; };
  static const Layout layouts[] = {{"q8_0", 32, 34}, {"q4_0", 32, 18}, {"q5_0", 32, 22},
                                   {"q4_K", 256, 144}, {"q6_K", 256, 210}, {"q8_K", 256, 292}};
  const Layout* layout = nullptr;
  for (const auto& l : layouts)
    if (type == l.name) layout = &l;
  if (!layout || k <= 0 || k % layout->block != 0) {
    std::fprintf(stderr, "llama-oracle: bad type or k\n");
    return 2;
  }
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::fprintf(stderr, "llama-oracle: %s\n", dlerror());
    return 1;
  }
  const std::string qname = "quantize_row_" + type + "_ref", dname = "dequantize_row_" + type;
  auto quantize = reinterpret_cast<QuantizeFn>(dlsym(lib, qname.c_str()));
  auto dequantize = reinterpret_cast<DequantizeFn>(dlsym(lib, dname.c_str()));
  if (!quantize || !dequantize) {
    std::fprintf(stderr, "llama-oracle: %s or %s not exported\n", qname.c_str(), dname.c_str());
    return 1;
  }
  const std::vector<char> in = read_file(argv[4]);
  const size_t row_floats = static_cast<size_t>(k);
  if (in.empty() || in.size() % (row_floats * 4) != 0) {
    std::fprintf(stderr, "llama-oracle: %s does not hold whole rows\n", argv[4]);
    return 1;
  }
  const size_t rows = in.size() / (row_floats * 4);
  const size_t row_bytes = row_floats / layout->block * layout->bytes;
  std::vector<char> q(rows * row_bytes, 0);
  std::vector<float> dq(rows * row_floats, 0.0f);
  for (size_t r = 0; r < rows; r++) {
    quantize(reinterpret_cast<const float*>(in.data()) + r * row_floats, q.data() + r * row_bytes, k);
    dequantize(q.data() + r * row_bytes, dq.data() + r * row_floats, k);
  }
  if (!write_file(argv[5], q.data(), q.size()) || !write_file(argv[6], dq.data(), dq.size() * 4)) {
    std::fprintf(stderr, "llama-oracle: cannot write the outputs\n");
    return 1;
  }
  return 0;
}
