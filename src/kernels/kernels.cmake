# Per-file ISA flags for the kernels layer (included from the top-level CMakeLists.txt right after
# the llmopt_kernels library is defined). Only the ISA translation units get -m flags; the rest of
# the tree stays portable. On other CPUs those files compile to nothing (file-level #if).
# GCC: the batched integer tiles (tiles_blockdot_x86.h) hold dozens of independent products per
# block. With GCC's default x86 pipeline (integer sums re-associated into trees, no scheduling before
# register allocation) it computes them all first and spills them; pressure-aware pre-allocation
# scheduling on the sums as written keeps them in registers (measured one core, Q4_0 / Q4_1 column
# tiles 66 -> 87 GMAC/s, Q8_0 unchanged).
# GCC 12's AVX-512 headers build their "undefined" pass-through vectors as `__m512 __Y = __Y;`, which
# its own -Wuninitialized then reports at every inlined intrinsic (thousands of lines per build, none
# about this code): silenced for the AVX-512 units only.
set(LLMOPT_KERNEL_SCHED "")
set(LLMOPT_AVX512_WARN "")
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set(LLMOPT_KERNEL_SCHED ";-fschedule-insns;-fsched-pressure;-fno-tree-reassoc")
  set(LLMOPT_AVX512_WARN ";-Wno-uninitialized;-Wno-maybe-uninitialized")
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
  set_source_files_properties(${CMAKE_SOURCE_DIR}/src/kernels/x86/avx2.cc
    TARGET_DIRECTORY llmopt_kernels PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c${LLMOPT_KERNEL_SCHED}")
  set_source_files_properties(${CMAKE_SOURCE_DIR}/src/kernels/x86/avx512.cc
    TARGET_DIRECTORY llmopt_kernels
    PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni;-mavx2;-mfma;-mf16c${LLMOPT_KERNEL_SCHED}${LLMOPT_AVX512_WARN}")
  set_source_files_properties(${CMAKE_SOURCE_DIR}/src/kernels/x86/amx.cc
    TARGET_DIRECTORY llmopt_kernels
    PROPERTIES COMPILE_OPTIONS
    "-mamx-tile;-mamx-int8;-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni;-mavx2;-mfma;-mf16c${LLMOPT_KERNEL_SCHED}${LLMOPT_AVX512_WARN}")
endif()
# The reference quantizers must round exactly like llama.cpp's: no fused multiply-adds.
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/kernels/ref/quantize.cc
  TARGET_DIRECTORY llmopt_kernels PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
# Files with their own flags compile alone, never inside a unity batch (LLMOPT_UNITY).
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/kernels/x86/avx2.cc ${CMAKE_SOURCE_DIR}/src/kernels/x86/avx512.cc
  ${CMAKE_SOURCE_DIR}/src/kernels/x86/amx.cc ${CMAKE_SOURCE_DIR}/src/kernels/ref/quantize.cc
  TARGET_DIRECTORY llmopt_kernels PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
