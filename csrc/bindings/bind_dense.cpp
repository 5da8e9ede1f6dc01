// dlfast._core.dense_forward / dense_backward (see csrc/cpu/dense.cpp for the math).
#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {

// The activations the fused kernels (dense, conv2d) take; leaky_relu is not one of them: the
// layers run it as a separate element-wise pass (activation_forward) after the linear kernel.
Activation activation_arg(int code, const char* fn) {
  if (code == int(Activation::leaky_relu))
    throw py::value_error(std::string(fn) + ": activation code " + std::to_string(code) +
                          " (leaky_relu) is not fused into this kernel; run it with code 0 "
                          "(linear), then activation_forward(y, " + std::to_string(code) +
                          ", negative_slope)");
  if (code < 0 || code >= kActivationCount)
    throw py::value_error(std::string(fn) + ": activation code must be " +
                          code_list(kActivationNames, kActivationCount) + ", got " +
                          std::to_string(code));
  return Activation(code);
}

namespace {

template <Impl I>
py::object dense_forward(py::handle x_obj, py::handle w_obj, py::handle b_obj, int act_code) {
  const char* fn = "dense_forward";
  const Activation act = activation_arg(act_code, fn);
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto x = array_arg<T>(x_obj, fn, "x", 2);
    auto w = array_arg<T>(w_obj, fn, "kernel", 2);
    const int64_t N = x.dim(0), D = x.dim(1), U = w.dim(1);
    if (w.dim(0) != D)
      throw py::value_error(std::string(fn) + ": 'x' has " + std::to_string(D) +
                            " features (shape " + shape_string(x.shape) + ") but 'kernel' " +
                            "expects " + std::to_string(w.dim(0)) + " (shape " +
                            shape_string(w.shape) + ")");
    const T* b = nullptr;
    if (!b_obj.is_none()) {
      auto bv = array_arg<T>(b_obj, fn, "bias", 1);
      expect_dim(fn, "bias.shape[0] (units)", bv.dim(0), U);
      b = bv.data;
    }
    auto y = new_array<T>({N, U});
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).dense_forward(yp, x.data, w.data, b, N, D, U, act);
    }
    return std::move(y);
  });
}

template <Impl I>
py::object dense_backward(py::handle dy_obj, py::handle x_obj, py::handle w_obj, py::handle y_obj,
                          int act_code, py::handle dw_obj, py::handle db_obj, bool need_dx,
                          bool accumulate) {
  const char* fn = "dense_backward";
  const Activation act = activation_arg(act_code, fn);
  return dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dy = array_arg<T>(dy_obj, fn, "dy", 2);
    auto x = array_arg<T>(x_obj, fn, "x", 2);
    auto w = array_arg<T>(w_obj, fn, "kernel", 2);
    auto dw = array_arg<T>(dw_obj, fn, "dkernel", 2, true);
    const int64_t N = x.dim(0), D = x.dim(1), U = w.dim(1);
    expect_dim(fn, "kernel.shape[0] (features of 'x')", w.dim(0), D);
    expect_dim(fn, "dy.shape[0] (batch of 'x')", dy.dim(0), N);
    expect_dim(fn, "dy.shape[1] (units of 'kernel')", dy.dim(1), U);
    if (dw.shape != w.shape)
      throw py::value_error(std::string(fn) + ": 'dkernel' must have the kernel's shape " +
                            shape_string(w.shape) + ", got " + shape_string(dw.shape));
    const T* y = nullptr;
    if (act != Activation::linear) {
      auto yv = array_arg<T>(y_obj, fn, "y", 2);
      if (yv.shape != dy.shape)
        throw py::value_error(std::string(fn) + ": 'y' must have the shape of 'dy' " +
                              shape_string(dy.shape) + ", got " + shape_string(yv.shape));
      y = yv.data;
    }
    T* db = nullptr;
    if (!db_obj.is_none()) {
      auto dbv = array_arg<T>(db_obj, fn, "dbias", 1, true);
      expect_dim(fn, "dbias.shape[0] (units)", dbv.dim(0), U);
      db = dbv.data;
    }
    py::object result = py::none();
    T* dx = nullptr;
    if (need_dx) {
      auto dxa = new_array<T>({N, D});
      dx = dxa.mutable_data();
      result = std::move(dxa);
    }
    {
      py::gil_scoped_release nogil;
      table<T>(I).dense_backward(dx, dw.data, db, dy.data, x.data, w.data, y, N, D, U, act,
                                  accumulate);
    }
    return result;
  });
}

}  // namespace

template <Impl I>
void bind_dense(py::module_& m) {
  m.def("dense_forward", &dense_forward<I>, py::arg("x"), py::arg("kernel"), py::arg("bias"),
        py::arg("activation"), "y = act(x @ kernel + bias); activation is a code of ACTIVATIONS but leaky_relu.");
  m.def("dense_backward", &dense_backward<I>, py::arg("dy"), py::arg("x"), py::arg("kernel"),
        py::arg("y"), py::arg("activation"), py::arg("dkernel"), py::arg("dbias"),
        py::arg("need_dx") = true, py::arg("accumulate") = true,
        "Adds x.T @ dz into dkernel and colsum(dz) into dbias (dz = dy * act'(y)), or writes "
        "them when accumulate is False; returns dx = dz @ kernel.T, or None when need_dx is "
        "False.");
}

template void bind_dense<Impl::fast>(py::module_& m);
template void bind_dense<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
