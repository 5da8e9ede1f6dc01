// dlfast._core.activation_forward / activation_backward on arrays of any rank; softmax
// normalises over the last axis; leaky_relu (code 5) takes its negative slope.
#include <cmath>

#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {

Activation activation_arg(int code, const char* fn);

namespace {

// The element-wise kernels take every code the fused Dense/Conv2D kernels take, and
// leaky_relu; its slope must be finite and >= 0 (backward reads the sign of x from y).
Activation elementwise_activation_arg(int code, double slope, const char* fn) {
  if (code != int(Activation::leaky_relu)) return activation_arg(code, fn);
  if (!(std::isfinite(slope) && slope >= 0))
    throw py::value_error(std::string(fn) + ": leaky_relu's 'negative_slope' must be a finite "
                          "number >= 0, got " + std::to_string(slope));
  return Activation::leaky_relu;
}

// Rows and columns of an array seen as [size / last, last].
template <typename T>
void rows_cols(const Array<T>& a, int64_t* R, int64_t* C) {
  *C = a.shape.empty() ? 1 : a.shape.back();
  *R = *C > 0 ? a.size / *C : 0;
}

template <Impl I>
py::object activation_forward(py::handle x_obj, int act_code, double slope) {
  const char* fn = "activation_forward";
  const Activation act = elementwise_activation_arg(act_code, slope, fn);
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto x = array_arg<T>(x_obj, fn, "x", -1);
    int64_t R, C;
    rows_cols(x, &R, &C);
    auto y = new_array<T>(x.shape);
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).activation_forward(yp, x.data, R, C, act, slope);
    }
    return std::move(y);
  });
}

template <Impl I>
py::object activation_backward(py::handle dy_obj, py::handle y_obj, int act_code,
                               double slope) {
  const char* fn = "activation_backward";
  const Activation act = elementwise_activation_arg(act_code, slope, fn);
  return dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dy = array_arg<T>(dy_obj, fn, "dy", -1);
    auto y = array_arg<T>(y_obj, fn, "y", -1);
    if (y.shape != dy.shape)
      throw py::value_error(std::string(fn) + ": 'y' must have the shape of 'dy' " +
                            shape_string(dy.shape) + ", got " + shape_string(y.shape));
    int64_t R, C;
    rows_cols(dy, &R, &C);
    auto dx = new_array<T>(dy.shape);
    T* dxp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).activation_backward(dxp, dy.data, y.data, R, C, act, slope);
    }
    return std::move(dx);
  });
}

}  // namespace

template <Impl I>
void bind_activation(py::module_& m) {
  m.def("activation_forward", &activation_forward<I>, py::arg("x"), py::arg("activation"),
        py::arg("negative_slope") = 0.2,
        "y = act(x); activation is a code of ACTIVATIONS (softmax over the last axis; "
        "leaky_relu is x > 0 ? x : negative_slope * x, Keras's default slope 0.2).");
  m.def("activation_backward", &activation_backward<I>, py::arg("dy"), py::arg("y"),
        py::arg("activation"), py::arg("negative_slope") = 0.2,
        "dx = dy * act'(y), from the forward output y (leaky_relu: dy * (y > 0 ? 1 : "
        "negative_slope)).");
}

template void bind_activation<Impl::fast>(py::module_& m);
template void bind_activation<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
