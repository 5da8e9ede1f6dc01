// Which kernels a binding calls: the fast ones of the active ISA path (dlfast._core.X) or the
// naive references of csrc/ref (dlfast._core.ref.X). Every binding is written once, as a
// template on Impl, so the two share their argument checks, signatures and return values.
#pragma once
#include "common/dispatch.h"
#include "ref/ref.h"

namespace dlfast {
namespace bind {

enum class Impl { fast, ref };

template <typename T>
const KernelTable<T>& table(Impl impl) {
  return impl == Impl::ref ? ref::kernels<T>() : kernels<T>();
}

}  // namespace bind
}  // namespace dlfast
