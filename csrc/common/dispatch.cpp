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

#define DLFAST_FILL(ns, T)                                                                    \
  KernelTable<T> {                                                                            \
    &ns::gemm<T>, &ns::dense_forward<T>, &ns::dense_backward<T>, &ns::activation_forward<T>, \
        &ns::activation_backward<T>, &ns::loss_forward_backward<T>, &ns::sgd_update<T>,      \
        &ns::adam_update<T>, &ns::adamax_update<T>, &ns::adadelta_update<T>,                 \
        &ns::sgdg2_probe<T>, &ns::sgdg2_dots<T>, &ns::sgdg2_step<T>,                         \
        &ns::conv2d_forward<T>, &ns::conv2d_backward<T>, &ns::maxpool2d_forward<T>,          \
        &ns::maxpool2d_backward<T>, &ns::avgpool2d_forward<T>, &ns::avgpool2d_backward<T>,   \
        &ns::lstm_forward<T>, &ns::lstm_backward<T>, &ns::batchnorm_forward<T>,               \
        &ns::batchnorm_backward<T>, &ns::regularizer_penalty<T>, &ns::rmsprop_update<T>,      \
        &ns::nadam_update<T>, &ns::upsampling2d_forward<T>, &ns::upsampling2d_backward<T>,    \
        &ns::zeropadding2d_forward<T>, &ns::zeropadding2d_backward<T>,                        \
        &ns::conv2d_transpose_forward<T>, &ns::conv2d_transpose_backward<T>,                  \
        &ns::conv2d_forward_path<T>, &ns::conv2d_backward_paths<T>                            \
  }

template <typename T>
KernelTable<T> table_for(Isa isa) {
  switch (isa) {
    case kAvx512: return DLFAST_FILL(avx512, T);
    case kAvx2: return DLFAST_FILL(avx2, T);
    default: return DLFAST_FILL(generic, T);
  }
}

struct State {
  Isa supported = detect_isa();
  Isa active = supported;
  KernelTable<float> f32 = table_for<float>(supported);
  KernelTable<double> f64 = table_for<double>(supported);

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

const char* cpu_capability() { return kIsaNames[state().active]; }
const char* cpu_capability_supported() { return kIsaNames[state().supported]; }
bool set_cpu_capability(const char* name) { return state().select(name); }

}  // namespace dlfast
