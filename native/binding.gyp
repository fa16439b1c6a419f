# Builds build/Release/tessera_native.node (under native/). The kernel sources
# are compiled once per instruction set into static libraries (no
# -march=native: what ships runs anywhere), and cpu.cc picks the best variant
# the running CPU supports. -ffp-contract=off keeps the compiler from fusing
# multiplies and adds on its own, so every variant rounds the same way.
{
  "variables": {
    "kernel_sources": [
      "src/kernels/activation-quant.cc",
      "src/kernels/attention.cc",
      "src/kernels/dequantize.cc",
      "src/kernels/kernel-table.cc",
      "src/kernels/matmul-float.cc",
      "src/kernels/matmul-kquant.cc",
      "src/kernels/matmul-q8-q4.cc",
      "src/kernels/matmul-tile.cc",
      "src/kernels/matmul-tile-kquant.cc",
      "src/kernels/matmul-tile-float.cc",
      "src/kernels/pointwise.cc",
      "src/kernels/tree.cc"
    ],
    "common_flags": ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-fvisibility=hidden"]
  },
  "target_defaults": {
    "cflags_cc!": ["-fno-exceptions"],
    "cflags_cc": ["-std=c++17"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "MACOSX_DEPLOYMENT_TARGET": "11.0"
    }
  },
  "targets": [
    {
      "target_name": "tessera_kernels_scalar",
      "type": "static_library",
      "sources": ["<@(kernel_sources)"],
      "defines": ["TESSERA_ISA_NS=scalar", "TESSERA_TABLE_GETTER=kernelTableScalar"],
      "cflags": ["<@(common_flags)"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<@(common_flags)"] }
    },
    {
      "target_name": "tessera_native",
      "sources": [
        "src/addon.cc",
        "src/kv-bindings.cc",
        "src/shared-rows-bindings.cc",
        "src/napi-args.cc",
        "src/bandwidth.cc",
        "src/comm/comm-bindings.cc",
        "src/comm/exchange.cc",
        "src/comm/group-bindings.cc",
        "src/comm/row-sharing.cc",
        "src/comm/mesh-hello.cc",
        "src/comm/sealed-link.cc",
        "src/comm/shm-group.cc",
        "src/comm/shm-mesh.cc",
        "src/comm/shm-segment.cc",
        "src/comm/socket-group.cc",
        "src/comm/socket-mesh.cc",
        "src/comm/tree-sum.cc",
        "src/comm/wait.cc",
        "src/cpu.cc",
        "src/huge-bytes.cc",
        "src/matmul.cc",
        "src/ops.cc",
        "src/packed-tile.cc",
        "src/shared-map.cc",
        "src/remote-write.cc",
        "src/thread-pool.cc",
        "src/tile-file.cc",
        "src/weight.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags": ["<@(common_flags)"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<@(common_flags)"] },
      "dependencies": ["tessera_kernels_scalar"],
      "conditions": [
        ["target_arch=='x64'", { "dependencies": ["tessera_kernels_avx2", "tessera_kernels_avx512"] }],
        ["target_arch=='arm64'", { "dependencies": ["tessera_kernels_neon"] }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "tessera_kernels_avx2",
          "type": "static_library",
          "sources": ["<@(kernel_sources)"],
          "defines": ["TESSERA_ISA_NS=avx2", "TESSERA_TABLE_GETTER=kernelTableAvx2"],
          "cflags": ["<@(common_flags)", "-mavx2", "-mfma", "-mf16c"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<@(common_flags)", "-mavx2", "-mfma", "-mf16c"] }
        },
        {
          "target_name": "tessera_kernels_avx512",
          "type": "static_library",
          "sources": ["<@(kernel_sources)"],
          "defines": ["TESSERA_ISA_NS=avx512", "TESSERA_TABLE_GETTER=kernelTableAvx512"],
          "cflags": ["<@(common_flags)", "-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl",
                     "-mavx512dq", "-mavx512vnni", "-Wno-maybe-uninitialized"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<@(common_flags)", "-mavx2", "-mfma", "-mf16c", "-mavx512f",
                                                       "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni"] }
        }
      ]
    }],
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "tessera_kernels_neon",
          "type": "static_library",
          "sources": ["<@(kernel_sources)"],
          "defines": ["TESSERA_ISA_NS=neon", "TESSERA_TABLE_GETTER=kernelTableNeon"],
          "cflags": ["<@(common_flags)"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<@(common_flags)"] }
        }
      ]
    }]
  ]
}
