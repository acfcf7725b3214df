# node-gyp build (used by `npm install` when no prebuild matches). CMakeLists.txt builds the
# same sources for development; keep the two source lists in step.
{
  "target_defaults": {
    "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-fvisibility=hidden"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
    "cflags!": ["-fno-exceptions"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno"]
    },
    "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } }
  },
  "targets": [
    {
      "target_name": "paligemma",
      "sources": [
        "native/addon.cc",
        "native/bind.cc",
        "native/bind_matmul.cc",
        "native/bind_ops.cc",
        "native/bind_image.cc",
        "native/threadpool.cc",
        "native/async.cc",
        "native/cpu/features.cc",
        "native/kernels/variants.cc",
        "native/image/resize.cc",
        "native/bind_model.cc",
        "native/model/gemma.cc",
        "native/model/siglip.cc",
        "native/model/mapped_file.cc",
        "native/bind_quant.cc",
        "native/quant/quantize.cc",
        "native/kernels/scalar/table.cc",
        "native/kernels/scalar/matmul.cc",
        "native/kernels/scalar/ops.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "libraries": ["-lpthread"],
      "conditions": [
        ["target_arch=='x64'", { "dependencies": ["kernels_avx2", "kernels_avx512"] }],
        ["target_arch=='arm64'", { "dependencies": ["kernels_neon"] }]
      ]
    },
    {
      "target_name": "kernels_avx2",
      "type": "static_library",
      "sources": ["native/kernels/avx2/table.cc", "native/kernels/avx2/matmul.cc", "native/kernels/avx2/ops.cc"],
      "cflags_cc": ["-fPIC", "-mavx2", "-mfma", "-mf16c"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-mavx2", "-mfma", "-mf16c"] }
    },
    {
      "target_name": "kernels_avx512",
      "type": "static_library",
      "sources": ["native/kernels/avx512/table.cc", "native/kernels/avx512/matmul.cc", "native/kernels/avx512/ops.cc"],
      "cflags_cc": ["-fPIC", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"]
      }
    },
    # Linked on arm64 only; elsewhere its sources compile to nothing (#if __aarch64__).
    {
      "target_name": "kernels_neon",
      "type": "static_library",
      "sources": ["native/kernels/neon/table.cc", "native/kernels/neon/matmul.cc", "native/kernels/neon/ops.cc"],
      "cflags_cc": ["-fPIC"]
    }
  ]
}
