// dlfast._core.ref: the naive reference kernels of csrc/ref behind the very bindings of the
// fast ones, so dlfast._core.ref.X takes the arguments of dlfast._core.X, checks them the same
// way and returns the same things; only the kernel called differs. For tests: one thread, slow.
#include "bindings/array_check.h"

namespace dlfast {
namespace bind {

void bind_ref(py::module_& m) {
  py::module_ r = m.def_submodule(
      "ref", "The reference kernels (csrc/ref): plain loops in each op's definition, sums in "
             "double, one thread. Same signatures as the fast kernels of dlfast._core.");
  bind_gemm<Impl::ref>(r);
  bind_dense<Impl::ref>(r);
  bind_activation<Impl::ref>(r);
  bind_loss<Impl::ref>(r);
  bind_optimizer<Impl::ref>(r);
  bind_conv<Impl::ref>(r);
  bind_pool<Impl::ref>(r);
  bind_lstm<Impl::ref>(r);
  bind_batchnorm<Impl::ref>(r);
  bind_regularizer<Impl::ref>(r);
  bind_resample<Impl::ref>(r);
  bind_conv_transpose<Impl::ref>(r);
  bind_layernorm<Impl::ref>(r);
  bind_embedding<Impl::ref>(r);
  bind_gru<Impl::ref>(r);
  bind_simple_rnn<Impl::ref>(r);
}

}  // namespace bind
}  // namespace dlfast
