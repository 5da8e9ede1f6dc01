// The reference kernels as one KernelTable (the layout of common/dispatch.h), which the
// bindings serve as dlfast._core.ref.
#include "ref/ref.h"

namespace dlfast {
namespace ref {
namespace {

// Every entry, by name, from DLFAST_KERNELS (common/dispatch.h); dispatch.cpp's static_assert
// makes the list cover the struct, and an op listed there without a reference here fails to
// compile (no ref::<name>).
template <typename T>
KernelTable<T> make_table() {
  KernelTable<T> t{};
#define DLFAST_SET_REF(name) t.name = &name<T>;
  DLFAST_KERNELS(DLFAST_SET_REF)
#undef DLFAST_SET_REF
  return t;
}

}  // namespace

template <>
const KernelTable<float>& kernels<float>() {
  static const KernelTable<float> table = make_table<float>();
  return table;
}
template <>
const KernelTable<double>& kernels<double>() {
  static const KernelTable<double> table = make_table<double>();
  return table;
}

}  // namespace ref
}  // namespace dlfast
