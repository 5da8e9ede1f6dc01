// dlfast._core.conv2d_transpose_forward / conv2d_transpose_backward (see
// csrc/cpu/conv_transpose.cpp for the math). x (N, h, w, Cin), kernel (kh, kw, F, Cin) (Keras's
// Conv2DTranspose layout), bias (F,), y and dy (N, H, W, F). The output size follows Keras 3
// and the placement of 'same' TensorFlow's conv2d_transpose (transpose_axis below); the
// kernels get the Conv2dShape of the forward convolution whose data gradient this is.
#include <optional>
#include <string>
#include <utility>

#include <pybind11/stl.h>

#include "bindings/array_check.h"
#include "bindings/conv_args.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {

Activation activation_arg(int code, const char* fn);  // bind_dense.cpp

namespace {

// Output length and the forward convolution's padding before, along one axis, for input length
// n, kernel k, stride s, dilation d, span = (k - 1) * d + 1, and output_padding op (or none):
//   'valid': out = (n - 1) * s + max(span, s), or (n - 1) * s + span + op; pad before 0
//   'same':  out = n * s, or (n - 1) * s + span % 2 + op;
//            pad before = max((n - 1) * s + span - out, 0) / 2
// The lengths are Keras 3's (backend_utils._get_output_shape_given_tf_padding, the same as
// conv_utils.deconv_output_length). The pad is TensorFlow's 'same' padding of a convolution of
// an input of length out with n outputs (its conv2d_transpose is that convolution's data
// gradient), the smaller half before; JAX's padding in Keras gives the same placement. An
// n = 0 axis can make the formula negative: it is clamped to 0.
void transpose_axis(int64_t n, int64_t k, int64_t stride, int64_t dil, bool same,
                    std::optional<int64_t> op, int64_t* out, int64_t* pad_before) {
  const int64_t span = (k - 1) * dil + 1;
  int64_t len;
  if (same)
    len = op ? (n - 1) * stride + span % 2 + *op : n * stride;
  else
    len = (n - 1) * stride + (op ? span + *op : (span > stride ? span : stride));
  *out = len > 0 ? len : 0;
  const int64_t total = same ? (n - 1) * stride + span - *out : 0;
  *pad_before = total > 0 ? total / 2 : 0;
}

template <typename T>
struct TransposeArgs {
  Array<T> x, w;
  Conv2dShape s;  // the forward convolution: input (N, H, W, C = F), output (N, P, Q, K = Cin)
};

template <typename T>
TransposeArgs<T> transpose_args(const char* fn, py::handle x_obj, py::handle w_obj,
                                const Pair& strides, const std::string& padding,
                                const std::optional<Pair>& output_padding,
                                const Pair& dilation) {
  check_step(fn, "strides", strides);
  check_step(fn, "dilation", dilation);
  const bool same = same_padding(fn, padding);
  if (output_padding) {
    const Pair& op = *output_padding;
    if (op.first < 0 || op.second < 0 || op.first >= strides.first ||
        op.second >= strides.second)
      throw py::value_error(std::string(fn) + ": output_padding must be >= 0 and less than " +
                            "the strides along each axis, got output_padding (" +
                            std::to_string(op.first) + ", " + std::to_string(op.second) +
                            ") with strides (" + std::to_string(strides.first) + ", " +
                            std::to_string(strides.second) + ")");
  }
  TransposeArgs<T> a{array_arg<T>(x_obj, fn, "x", 4), array_arg<T>(w_obj, fn, "kernel", 4), {}};
  Conv2dShape& s = a.s;
  s.N = a.x.dim(0), s.P = a.x.dim(1), s.Q = a.x.dim(2), s.K = a.x.dim(3);
  s.R = a.w.dim(0), s.S = a.w.dim(1), s.C = a.w.dim(2);
  if (a.w.dim(3) != s.K)
    throw py::value_error(std::string(fn) + ": 'x' has " + std::to_string(s.K) +
                          " channels (shape " + shape_string(a.x.shape) + ") but 'kernel' " +
                          "expects " + std::to_string(a.w.dim(3)) + " input channels (shape " +
                          shape_string(a.w.shape) + ", (kh, kw, filters, in_channels))");
  if (s.R < 1 || s.S < 1)
    throw py::value_error(std::string(fn) + ": 'kernel' must have a nonzero height and width, "
                          "got shape " + shape_string(a.w.shape));
  s.stride_h = strides.first, s.stride_w = strides.second;
  s.dil_h = dilation.first, s.dil_w = dilation.second;
  std::optional<int64_t> op_h, op_w;
  if (output_padding) op_h = output_padding->first, op_w = output_padding->second;
  transpose_axis(s.P, s.R, s.stride_h, s.dil_h, same, op_h, &s.H, &s.pad_top);
  transpose_axis(s.Q, s.S, s.stride_w, s.dil_w, same, op_w, &s.W, &s.pad_left);
  return a;
}

template <typename T>
void expect_output_shape(const char* fn, const char* name, const Array<T>& a,
                         const Conv2dShape& s) {
  const std::vector<int64_t> want{s.N, s.H, s.W, s.C};
  if (a.shape != want)
    throw py::value_error(std::string(fn) + ": '" + name + "' must have the output shape " +
                          shape_string(want) + " (N, H, W, filters), got " +
                          shape_string(a.shape));
}

template <Impl I>
py::object conv2d_transpose_forward(py::handle x_obj, py::handle w_obj, py::handle b_obj,
                                    Pair strides, std::string padding,
                                    std::optional<Pair> output_padding, Pair dilation,
                                    int act_code) {
  const char* fn = "conv2d_transpose_forward";
  const Activation act = activation_arg(act_code, fn);
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const TransposeArgs<T> a =
        transpose_args<T>(fn, x_obj, w_obj, strides, padding, output_padding, dilation);
    const Conv2dShape s = a.s;
    const T* b = nullptr;
    if (!b_obj.is_none()) {
      auto bv = array_arg<T>(b_obj, fn, "bias", 1);
      expect_dim(fn, "bias.shape[0] (filters, kernel.shape[2])", bv.dim(0), s.C);
      b = bv.data;
    }
    auto y = new_array<T>({s.N, s.H, s.W, s.C});
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).conv2d_transpose_forward(yp, a.x.data, a.w.data, b, s, act);
    }
    return std::move(y);
  });
}

template <Impl I>
py::object conv2d_transpose_backward(py::handle dy_obj, py::handle x_obj, py::handle w_obj,
                                     py::handle y_obj, Pair strides, std::string padding,
                                     std::optional<Pair> output_padding, Pair dilation,
                                     int act_code, py::handle dw_obj, py::handle db_obj,
                                     bool need_dx, bool accumulate) {
  const char* fn = "conv2d_transpose_backward";
  const Activation act = activation_arg(act_code, fn);
  return dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dy = array_arg<T>(dy_obj, fn, "dy", 4);
    const TransposeArgs<T> a =
        transpose_args<T>(fn, x_obj, w_obj, strides, padding, output_padding, dilation);
    const Conv2dShape s = a.s;
    expect_output_shape(fn, "dy", dy, s);
    auto dw = array_arg<T>(dw_obj, fn, "dkernel", 4, true);
    if (dw.shape != a.w.shape)
      throw py::value_error(std::string(fn) + ": 'dkernel' must have the kernel's shape " +
                            shape_string(a.w.shape) + ", got " + shape_string(dw.shape));
    const T* y = nullptr;
    if (act != Activation::linear) {
      if (y_obj.is_none())
        throw py::value_error(std::string(fn) + ": 'y' (the forward output) is required for a "
                              "non-linear activation, got None");
      auto yv = array_arg<T>(y_obj, fn, "y", 4);
      expect_output_shape(fn, "y", yv, s);
      y = yv.data;
    }
    T* db = nullptr;
    if (!db_obj.is_none()) {
      auto dbv = array_arg<T>(db_obj, fn, "dbias", 1, true);
      expect_dim(fn, "dbias.shape[0] (filters, kernel.shape[2])", dbv.dim(0), s.C);
      db = dbv.data;
    }
    py::object result = py::none();
    T* dx = nullptr;
    if (need_dx) {
      auto dxa = new_array<T>({s.N, s.P, s.Q, s.K});
      dx = dxa.mutable_data();
      result = std::move(dxa);
    }
    {
      py::gil_scoped_release nogil;
      table<T>(I).conv2d_transpose_backward(dx, dw.data, db, dy.data, a.x.data, a.w.data, y,
                                             s, act, accumulate);
    }
    return result;
  });
}

}  // namespace

template <Impl I>
void bind_conv_transpose(py::module_& m) {
  m.def("conv2d_transpose_forward", &conv2d_transpose_forward<I>, py::arg("x"), py::arg("kernel"),
        py::arg("bias"), py::arg("strides"), py::arg("padding"), py::arg("output_padding"),
        py::arg("dilation"), py::arg("activation"),
        "y = act(conv2d_transpose(x, kernel) + bias): x (N, h, w, Cin), kernel (kh, kw, F, "
        "Cin), bias (F,) or None, strides and dilation (h, w), padding 'valid' or 'same', "
        "output_padding (h, w) or None (Keras 3's output size), activation a code of ACTIVATIONS but leaky_relu -> "
        "y (N, H, W, F).");
  m.def("conv2d_transpose_backward", &conv2d_transpose_backward<I>, py::arg("dy"), py::arg("x"),
        py::arg("kernel"), py::arg("y"), py::arg("strides"), py::arg("padding"),
        py::arg("output_padding"), py::arg("dilation"), py::arg("activation"),
        py::arg("dkernel"), py::arg("dbias"), py::arg("need_dx") = true,
        py::arg("accumulate") = true,
        "Adds the kernel and bias gradients into dkernel and dbias (or writes them when "
        "accumulate is False), with dz = dy * act'(y); returns dx (N, h, w, Cin), or None when "
        "need_dx is False.");
}

template void bind_conv_transpose<Impl::fast>(py::module_& m);
template void bind_conv_transpose<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
