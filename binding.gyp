# node-gyp build (used by `npm install` when no prebuild matches). CMakeLists.txt builds the
# same targets from the same source lists; keep the two in step.
#
# Two addons share one core library: `paligemma` (build/Release/paligemma.node) is what the package
# loads; `paligemma_test` (build/Release/paligemma_test.so) holds the kernel bindings and hooks that
# only tests and benchmarks load. It is not named .node because node-gyp-build and prebuildify take
# the first .node file in build/Release, whichever it is; lib/native.ts loads it with process.dlopen.
{
  "target_defaults": {
    # A Napi::Error thrown while the environment shuts down (a Worker terminated, a page reloaded)
    # cannot reach JS; without this, node-addon-api turns that into a second C++ exception, which aborts.
    "defines": ["NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-fvisibility=hidden"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
    "cflags!": ["-fno-exceptions"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno"]
    },
    "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } },
    "conditions": [
      # Every target is built on every architecture: off x64 the AVX kernel libraries are empty
      # (their sources need x86 intrinsics), as the NEON ones are off arm64.
      ["target_arch!='x64'", { "sources/": [["exclude", "native/kernels/avx[^/]*/"]] }]
    ]
  },
  "targets": [
    {
      "target_name": "paligemma",
      "sources": ["native/addon.cc"],
      "dependencies": ["paligemma_core"]
    },
    {
      "target_name": "paligemma_test",
      # After node-gyp's own target_conditions, which set .node.
      "target_conditions": [["_type=='loadable_module'", { "product_extension": "so" }]],
      "sources": ["native/testing/addon.cc", "native/testing/bind_matmul.cc", "native/testing/bind_ops.cc"],
      "dependencies": ["paligemma_core"]
    },
    {
      "target_name": "paligemma_core",
      "type": "static_library",
      "sources": [
        "native/bind.cc",
        "native/bind_runtime.cc",
        "native/bind_matmul.cc",
        "native/bind_image.cc",
        "native/bind_model.cc",
        "native/threadpool.cc",
        "native/async.cc",
        "native/errors.cc",
        "native/fault_guard.cc",
        "native/cpu/features.cc",
        "native/kernels/variants.cc",
        "native/kernels/scratch.cc",
        "native/image/resize.cc",
        "native/model/gemma.cc",
        "native/model/paligemma.cc",
        "native/model/load.cc",
        "native/model/siglip.cc",
        "native/model/mapped_file.cc",
        "native/bind_quant.cc",
        "native/quant/quantize.cc",
        "native/kernels/quant_dot_select.cc",
        "native/kernels/scalar/table.cc",
        "native/kernels/scalar/matmul.cc",
        "native/kernels/scalar/ops.cc",
        "native/kernels/scalar/quant_dot.cc"
      ],
      "cflags_cc": ["-fPIC"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"],
      "export_dependent_settings": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"],
      "conditions": [
        ["OS!='win'", { "link_settings": { "libraries": ["-lpthread"] } }],
        ["target_arch=='x64'", { "dependencies": ["kernels_avx2", "kernels_avx512", "kernels_avx512vnni"] }],
        ["target_arch=='arm64'", { "dependencies": ["kernels_neon", "kernels_neon_dotprod"] }]
      ]
    },
    {
      "target_name": "kernels_avx2",
      "type": "static_library",
      "sources": [
        "native/kernels/avx2/table.cc", "native/kernels/avx2/matmul.cc", "native/kernels/avx2/ops.cc",
        "native/kernels/avx2/quant_dot.cc"
      ],
      "cflags_cc": ["-fPIC", "-mavx2", "-mfma", "-mf16c"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-mavx2", "-mfma", "-mf16c"] }
    },
    {
      "target_name": "kernels_avx512",
      "type": "static_library",
      "sources": [
        "native/kernels/avx512/table.cc", "native/kernels/avx512/matmul.cc", "native/kernels/avx512/ops.cc",
        "native/kernels/avx512/quant_dot.cc"
      ],
      "cflags_cc": ["-fPIC", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"]
      }
    },
    # The AVX-512 quantized kernels with vpdpbusd, used where the CPU has AVX512-VNNI.
    {
      "target_name": "kernels_avx512vnni",
      "type": "static_library",
      "sources": ["native/kernels/avx512vnni/quant_dot.cc"],
      "cflags_cc": ["-fPIC", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx2", "-mfma", "-mf16c"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx2", "-mfma", "-mf16c"]
      }
    },
    # Linked on arm64 only; elsewhere their sources compile to nothing (#if __aarch64__).
    {
      "target_name": "kernels_neon",
      "type": "static_library",
      "sources": [
        "native/kernels/neon/table.cc", "native/kernels/neon/matmul.cc", "native/kernels/neon/ops.cc",
        "native/kernels/neon/quant_dot.cc"
      ],
      "cflags_cc": ["-fPIC"]
    },
    # The NEON quantized kernels with vdotq_s32, used where the CPU has the dot-product extension.
    {
      "target_name": "kernels_neon_dotprod",
      "type": "static_library",
      "sources": ["native/kernels/neon_dotprod/quant_dot.cc"],
      "cflags_cc": ["-fPIC"],
      "conditions": [
        ["target_arch=='arm64'", {
          "cflags_cc": ["-march=armv8.2-a+dotprod"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-march=armv8.2-a+dotprod"] }
        }]
      ]
    }
  ]
}
