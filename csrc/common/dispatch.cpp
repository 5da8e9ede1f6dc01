// Fills the kernel tables once, from the CPU's features, or from DLFAST_CPU_CAPABILITY.
#include "common/dispatch.h"

#include <cstdlib>
#include <cstring>

#define DLFAST_ISA generic
#include "cpu/kernels.h"
#undef DLFAST_ISA
#define DLFAST_ISA avx2
#include "cpu/kernels.h"
#undef DLFAST_ISA
#define DLFAST_ISA avx512
#include "cpu/kernels.h"
#undef DLFAST_ISA

namespace dlfast {
namespace {

enum Isa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };
const char* const kIsaNames[] = {"generic", "avx2", "avx512"};

Isa detect_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("fma"))
    return kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    return kAvx2;
#endif
  return kGeneric;
}

// Each entry set by name from the ISA's namespace (see DLFAST_KERNELS).
#define DLFAST_COUNT(name) +1
static_assert(sizeof(KernelTable<float>) == (0 DLFAST_KERNELS(DLFAST_COUNT)) * sizeof(void (*)()),
              "KernelTable has an entry that DLFAST_KERNELS (dispatch.h) does not list");
#undef DLFAST_COUNT

template <typename T>
KernelTable<T> table_for(Isa isa) {
  KernelTable<T> t{};
#define DLFAST_SET_GENERIC(name) t.name = &generic::name<T>;
#define DLFAST_SET_AVX2(name) t.name = &avx2::name<T>;
#define DLFAST_SET_AVX512(name) t.name = &avx512::name<T>;
  switch (isa) {
    case kAvx512: DLFAST_KERNELS(DLFAST_SET_AVX512) break;
    case kAvx2: DLFAST_KERNELS(DLFAST_SET_AVX2) break;
    default: DLFAST_KERNELS(DLFAST_SET_GENERIC) break;
  }
#undef DLFAST_SET_GENERIC
#undef DLFAST_SET_AVX2
#undef DLFAST_SET_AVX512
  return t;
}

template <typename T>
ConvPathTable<T> conv_paths_for(Isa isa) {
  switch (isa) {
    case kAvx512: return {&avx512::conv2d_forward_path<T>, &avx512::conv2d_backward_paths<T>};
    case kAvx2: return {&avx2::conv2d_forward_path<T>, &avx2::conv2d_backward_paths<T>};
    default: return {&generic::conv2d_forward_path<T>, &generic::conv2d_backward_paths<T>};
  }
}

struct State {
  Isa supported = detect_isa();
  Isa active = supported;
  KernelTable<float> f32 = table_for<float>(supported);
  KernelTable<double> f64 = table_for<double>(supported);
  ConvPathTable<float> paths32 = conv_paths_for<float>(supported);
  ConvPathTable<double> paths64 = conv_paths_for<double>(supported);

  State() {
    // DLFAST_CPU_CAPABILITY may force a lower path; an unknown or unsupported name is ignored
    // here (the Python package warns about it, where a warning can be seen).
    if (const char* env = std::getenv("DLFAST_CPU_CAPABILITY")) select(env);
  }
  bool select(const char* name) {
    for (int i = 0; i <= int(supported); ++i) {
      if (std::strcmp(name, kIsaNames[i]) == 0) {
        active = Isa(i);
        f32 = table_for<float>(active);
        f64 = table_for<double>(active);
        paths32 = conv_paths_for<float>(active);
        paths64 = conv_paths_for<double>(active);
        return true;
      }
    }
    return false;
  }
};

State& state() {
  static State s;
  return s;
}

}  // namespace

template <>
const KernelTable<float>& kernels<float>() {
  return state().f32;
}
template <>
const KernelTable<double>& kernels<double>() {
  return state().f64;
}

template <>
const ConvPathTable<float>& conv_paths<float>() {
  return state().paths32;
}
template <>
const ConvPathTable<double>& conv_paths<double>() {
  return state().paths64;
}

const char* cpu_capability() { return kIsaNames[state().active]; }
const char* cpu_capability_supported() { return kIsaNames[state().supported]; }
bool set_cpu_capability(const char* name) { return state().select(name); }

}  // namespace dlfast
