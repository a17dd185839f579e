// at::vec in its AVX2 flavour (inline namespace at::vec::AVX2, SLEEF from libtorch_cpu) in an
// extension built for the baseline ISA. Include vectorized.h, which says how to use it.
//
// A system header, as torch's headers are to CMake builds: under -Wall, at::vec's
// '#pragma unroll' would otherwise fill the build log with warnings.
#pragma once
#pragma GCC system_header

// What at::vec includes besides itself, included first and so compiled for the baseline ISA:
// only the capability-namespaced at::vec code is emitted with AVX2 instructions. (An inline
// function emitted with them would be a copy the linker might keep for every caller.)
#include <ATen/native/Math.h>
#include <ATen/native/cpu/zmath.h>
#include <ATen/native/quantized/AffineQuantizerBase.h>
#include <c10/util/BFloat16-math.h>

// Code between these is compiled for AVX2 + FMA (+ F16C, which at::vec's AVX2 code also uses).
#define MMSEG_VEC_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c\")")
#define MMSEG_VEC_END _Pragma("GCC pop_options")

MMSEG_VEC_BEGIN
// g++ compiles for a target pragma but does not define its ISA macros (its C++ front end lexes
// the whole file first), and sleef.h declares its AVX functions only under them.
#ifndef __AVX2__
#define MMSEG_MASKFORMER_ISA_MACROS
#define __AVX__ 1
#define __AVX2__ 1
#define __FMA__ 1
#define __F16C__ 1
#endif
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include <ATen/cpu/vec/vec.h>
#undef CPU_CAPABILITY
#undef CPU_CAPABILITY_AVX2
#ifdef MMSEG_MASKFORMER_ISA_MACROS
#undef MMSEG_MASKFORMER_ISA_MACROS
#undef __AVX__
#undef __AVX2__
#undef __FMA__
#undef __F16C__
#endif
MMSEG_VEC_END
