// The optional GPU module, dlfast._cuda (private; python/dlfast/cuda wraps it). Importing it
// needs no GPU and no driver: the CUDA runtime is linked statically and only asked for a
// device when a function runs; dlfast.cuda.is_available() asks status() first.
#include "bindings/cuda/device_array.h"

#ifndef DLFAST_CUDA_ARCHITECTURES
#define DLFAST_CUDA_ARCHITECTURES "unknown"
#endif

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "dlfast CUDA kernels (floor 1) behind pybind11 (floor 2).";
  m.def("build_info", [] {
    py::dict d;
    d["cuda_runtime"] = std::to_string(CUDART_VERSION / 1000) + "." +
                        std::to_string(CUDART_VERSION % 1000 / 10);
    d["architectures"] = DLFAST_CUDA_ARCHITECTURES;
    return d;
  });
  dlfast::bind_cuda::bind_device_array(m);
  dlfast::bind_cuda::bind_ops(m);
}
