// The one extension module, dlfast._core (private; python/dlfast wraps it).
#include "bindings/array_check.h"
#include "common/dispatch.h"
#include "common/threading.h"

#ifndef DLFAST_VERSION
#define DLFAST_VERSION "0.0.0"
#endif
#ifndef DLFAST_BUILD_TYPE
#define DLFAST_BUILD_TYPE "unknown"
#endif
#ifndef DLFAST_COMPILER
#define DLFAST_COMPILER "unknown"
#endif

PYBIND11_MODULE(_core, m) {
  using namespace dlfast;
  m.doc() = "dlfast C++ kernels (floor 1) behind pybind11 (floor 2).";
  m.attr("__version__") = DLFAST_VERSION;
  m.def("build_info", [] {
    py::dict d;
    d["version"] = DLFAST_VERSION;
    d["build_type"] = DLFAST_BUILD_TYPE;
    d["compiler"] = DLFAST_COMPILER;
    d["cpu_capability_supported"] = cpu_capability_supported();
    return d;
  });
  m.def("cpu_capability", &cpu_capability, "The kernel path in use: avx512, avx2 or generic.");
  m.def("set_cpu_capability", [](const std::string& name) { return set_cpu_capability(name.c_str()); },
        py::arg("name"), "Select a kernel path the CPU supports; False if it cannot.");
  // name -> code of every activation and loss, and the kernel table's entries (dispatch.h)
  py::dict activations, losses;
  py::list kernel_names;
#define DLFAST_ACTIVATION_ITEM(name) activations[#name] = int(Activation::name);
#define DLFAST_LOSS_ITEM(name) losses[#name] = int(Loss::name);
#define DLFAST_KERNEL_ITEM(name) kernel_names.append(#name);
  DLFAST_ACTIVATIONS(DLFAST_ACTIVATION_ITEM)
  DLFAST_LOSSES(DLFAST_LOSS_ITEM)
  DLFAST_KERNELS(DLFAST_KERNEL_ITEM)
#undef DLFAST_ACTIVATION_ITEM
#undef DLFAST_LOSS_ITEM
#undef DLFAST_KERNEL_ITEM
  m.attr("ACTIVATIONS") = activations;
  m.attr("LOSSES") = losses;
  m.attr("KERNELS") = py::tuple(kernel_names);
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("set_num_threads: expected n >= 1, got " + std::to_string(n));
    set_num_threads(n);
  }, py::arg("n"));
  bind::bind_gemm<bind::Impl::fast>(m);
  bind::bind_dense<bind::Impl::fast>(m);
  bind::bind_activation<bind::Impl::fast>(m);
  bind::bind_loss<bind::Impl::fast>(m);
  bind::bind_optimizer<bind::Impl::fast>(m);
  bind::bind_conv<bind::Impl::fast>(m);
  bind::bind_pool<bind::Impl::fast>(m);
  bind::bind_lstm<bind::Impl::fast>(m);
  bind::bind_batchnorm<bind::Impl::fast>(m);
  bind::bind_regularizer<bind::Impl::fast>(m);
  bind::bind_resample<bind::Impl::fast>(m);
  bind::bind_conv_transpose<bind::Impl::fast>(m);
  bind::bind_layernorm<bind::Impl::fast>(m);
  bind::bind_embedding<bind::Impl::fast>(m);
  bind::bind_gru<bind::Impl::fast>(m);
  bind::bind_simple_rnn<bind::Impl::fast>(m);
  bind::bind_ref(m);
}
