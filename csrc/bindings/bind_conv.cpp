// dlfast._core.conv2d_forward / conv2d_backward (see csrc/cpu/conv_common.h for the math).
// x (N, H, W, C), kernel (R, S, C, K) HWIO, bias (K,), y and dy (N, P, Q, K). The output size
// and the padding come from 'valid'/'same' with TensorFlow's arithmetic (conv_shape below).
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/array_check.h"
#include "bindings/conv_args.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {

Activation activation_arg(int code, const char* fn);  // bind_dense.cpp

void check_step(const char* fn, const char* what, const Pair& v) {
  for (int64_t e : {v.first, v.second})
    if (e < 1 || e > kMaxStep)
      throw py::value_error(std::string(fn) + ": " + what + " must be positive integers (>= 1), got (" +
                            std::to_string(v.first) + ", " + std::to_string(v.second) + ")");
}

WindowAxis window_axis(int64_t n, int64_t k, int64_t stride, int64_t dilation, bool same) {
  const int64_t span = (k - 1) * dilation + 1;
  if (same) {
    const int64_t out = (n + stride - 1) / stride;
    const int64_t total = (out - 1) * stride + span - n;
    return {out, total > 0 ? total / 2 : 0, true};
  }
  if (span > n) return {0, 0, false};
  return {(n - span) / stride + 1, 0, true};
}

bool same_padding(const char* fn, const std::string& padding) {
  if (padding != "valid" && padding != "same")
    throw py::value_error(std::string(fn) + ": padding must be 'valid' or 'same', got '" +
                          padding + "'");
  return padding == "same";
}

namespace {

// Output length and padding before along one axis; ValueError when a 'valid' kernel does not
// fit.
void axis_shape(const char* fn, const char* axis, int64_t n, int64_t k, int64_t stride,
                int64_t dil, bool same, int64_t* out, int64_t* pad_before) {
  const WindowAxis a = window_axis(n, k, stride, dil, same);
  if (!a.fits)
    throw py::value_error(std::string(fn) + ": with padding='valid' the kernel " + axis + " " +
                          std::to_string(k) + " at dilation " + std::to_string(dil) +
                          " spans " + std::to_string((k - 1) * dil + 1) + " input " + axis +
                          "s, more than the input " + axis + " " + std::to_string(n) +
                          " (use padding='same' or a smaller kernel)");
  *out = a.out;
  *pad_before = a.pad_before;
}

template <typename T>
struct ConvArgs {
  Array<T> x, w;
  Conv2dShape s;
};

// The full shape from x's and the kernel's (4 sizes each), strides, padding and dilation
// (checked already: check_step, same_padding).
Conv2dShape conv_shape(const char* fn, const std::vector<int64_t>& x_shape,
                       const std::vector<int64_t>& w_shape, const Pair& strides, bool same,
                       const Pair& dilation) {
  Conv2dShape s{};
  s.N = x_shape[0], s.H = x_shape[1], s.W = x_shape[2], s.C = x_shape[3];
  s.R = w_shape[0], s.S = w_shape[1], s.K = w_shape[3];
  if (w_shape[2] != s.C)
    throw py::value_error(std::string(fn) + ": 'x' has " + std::to_string(s.C) +
                          " channels (shape " + shape_string(x_shape) + ") but 'kernel' " +
                          "expects " + std::to_string(w_shape[2]) + " input channels (shape " +
                          shape_string(w_shape) + ", HWIO)");
  if (s.R < 1 || s.S < 1)
    throw py::value_error(std::string(fn) + ": 'kernel' must have a nonzero height and width, "
                          "got shape " + shape_string(w_shape));
  s.stride_h = strides.first, s.stride_w = strides.second;
  s.dil_h = dilation.first, s.dil_w = dilation.second;
  axis_shape(fn, "height", s.H, s.R, s.stride_h, s.dil_h, same, &s.P, &s.pad_top);
  axis_shape(fn, "width", s.W, s.S, s.stride_w, s.dil_w, same, &s.Q, &s.pad_left);
  return s;
}

// Checks x and kernel and derives the full shape from strides, padding and dilation.
template <typename T>
ConvArgs<T> conv_args(const char* fn, py::handle x_obj, py::handle w_obj, const Pair& strides,
                      const std::string& padding, const Pair& dilation) {
  check_step(fn, "strides", strides);
  check_step(fn, "dilation", dilation);
  const bool same = same_padding(fn, padding);
  ConvArgs<T> a{array_arg<T>(x_obj, fn, "x", 4), array_arg<T>(w_obj, fn, "kernel", 4), {}};
  a.s = conv_shape(fn, a.x.shape, a.w.shape, strides, same, dilation);
  return a;
}

template <typename T>
void expect_output_shape(const char* fn, const char* name, const Array<T>& a,
                         const Conv2dShape& s) {
  const std::vector<int64_t> want{s.N, s.P, s.Q, s.K};
  if (a.shape != want)
    throw py::value_error(std::string(fn) + ": '" + name + "' must have the output shape " +
                          shape_string(want) + " (N, P, Q, K), got " + shape_string(a.shape));
}

template <Impl I>
py::object conv2d_forward(py::handle x_obj, py::handle w_obj, py::handle b_obj, Pair strides,
                          std::string padding, Pair dilation, int act_code) {
  const char* fn = "conv2d_forward";
  const Activation act = activation_arg(act_code, fn);
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const ConvArgs<T> a = conv_args<T>(fn, x_obj, w_obj, strides, padding, dilation);
    const Conv2dShape s = a.s;
    const T* b = nullptr;
    if (!b_obj.is_none()) {
      auto bv = array_arg<T>(b_obj, fn, "bias", 1);
      expect_dim(fn, "bias.shape[0] (filters, kernel.shape[3])", bv.dim(0), s.K);
      b = bv.data;
    }
    auto y = new_array<T>({s.N, s.P, s.Q, s.K});
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).conv2d_forward(yp, a.x.data, a.w.data, b, s, act);
    }
    return std::move(y);
  });
}

template <Impl I>
py::object conv2d_backward(py::handle dy_obj, py::handle x_obj, py::handle w_obj,
                           py::handle y_obj, Pair strides, std::string padding, Pair dilation,
                           int act_code, py::handle dw_obj, py::handle db_obj, bool need_dx,
                           bool accumulate) {
  const char* fn = "conv2d_backward";
  const Activation act = activation_arg(act_code, fn);
  return dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dy = array_arg<T>(dy_obj, fn, "dy", 4);
    const ConvArgs<T> a = conv_args<T>(fn, x_obj, w_obj, strides, padding, dilation);
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
      expect_dim(fn, "dbias.shape[0] (filters, kernel.shape[3])", dbv.dim(0), s.K);
      db = dbv.data;
    }
    py::object result = py::none();
    T* dx = nullptr;
    if (need_dx) {
      auto dxa = new_array<T>({s.N, s.H, s.W, s.C});
      dx = dxa.mutable_data();
      result = std::move(dxa);
    }
    {
      py::gil_scoped_release nogil;
      table<T>(I).conv2d_backward(dx, dw.data, db, dy.data, a.x.data, a.w.data, y, s, act,
                                   accumulate);
    }
    return result;
  });
}

// The names conv2d_paths gives each path, in the order of its enum (common/dispatch.h).
const char* const kForwardPaths[] = {"empty", "pointwise", "direct", "packed"};
const char* const kDxPaths[] = {"none", "empty", "pointwise", "by_forward", "col2im"};
const char* const kDwPaths[] = {"empty", "pointwise", "in_place", "im2col"};
static_assert(std::size(kForwardPaths) == size_t(ConvForwardPath::packed) + 1, "");
static_assert(std::size(kDxPaths) == size_t(ConvDxPath::col2im) + 1, "");
static_assert(std::size(kDwPaths) == size_t(ConvDwPath::im2col) + 1, "");

// A shape argument given as sizes: 4 of them, each >= 0, whose product (zeros counted as 1)
// fits int64, as an array's shape would; ValueError otherwise.
std::vector<int64_t> shape_arg(const char* fn, const char* name, const std::vector<int64_t>& v) {
  int64_t n = 1;
  bool ok = v.size() == 4;
  for (int64_t e : v) ok = ok && e >= 0 && !__builtin_mul_overflow(n, e > 0 ? e : 1, &n);
  if (!ok)
    throw py::value_error(std::string(fn) + ": '" + name + "' must be 4 sizes >= 0 (an " +
                          "array's shape), got " + shape_string(v));
  return v;
}

// The paths conv2d_forward and conv2d_backward (with need_dx) take for these shapes on the
// active ISA: {'forward': ..., 'dx': ..., 'dw': ...}, named as above.
py::object conv2d_paths(const std::vector<int64_t>& x_shape,
                        const std::vector<int64_t>& w_shape, Pair strides, std::string padding,
                        Pair dilation, py::handle dtype, bool need_dx) {
  const char* fn = "conv2d_paths";
  check_step(fn, "strides", strides);
  check_step(fn, "dilation", dilation);
  const bool same = same_padding(fn, padding);
  const Conv2dShape s = conv_shape(fn, shape_arg(fn, "x_shape", x_shape),
                                   shape_arg(fn, "kernel_shape", w_shape), strides, same,
                                   dilation);
  const py::dtype dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(dtype));
  if (!dt.equal(py::dtype::of<float>()) && !dt.equal(py::dtype::of<double>()))
    throw py::type_error(std::string(fn) + ": dtype must be float32 or float64, got " +
                         std::string(py::str(dt)));
  const FloatType t = dt.equal(py::dtype::of<float>()) ? FloatType::f32 : FloatType::f64;
  return dispatch_float(t, [&](auto tag) -> py::object {
    using T = decltype(tag);
    const ConvBackwardPaths b = conv_paths<T>().backward(s, need_dx);
    py::dict d;
    d["forward"] = kForwardPaths[int(conv_paths<T>().forward(s))];
    d["dx"] = kDxPaths[int(b.dx)];
    d["dw"] = kDwPaths[int(b.dw)];
    return std::move(d);
  });
}

template <size_t N>
py::tuple name_tuple(const char* const (&names)[N]) {
  py::tuple t(N);
  for (size_t i = 0; i < N; ++i) t[i] = py::str(names[i]);
  return t;
}

py::dict conv2d_path_names() {
  py::dict d;
  d["forward"] = name_tuple(kForwardPaths);
  d["dx"] = name_tuple(kDxPaths);
  d["dw"] = name_tuple(kDwPaths);
  return d;
}

}  // namespace

template <Impl I>
void bind_conv(py::module_& m) {
  if constexpr (I == Impl::fast)  // geometry, not a kernel: on dlfast._core only
    m.def(
      "window_axis",
      [](int64_t n, int64_t k, int64_t stride, int64_t dilation, const std::string& padding)
          -> py::object {
        if (n < 0 || k < 1 || stride < 1 || dilation < 1)
          throw py::value_error("window_axis: expected n >= 0 and k, stride, dilation >= 1, got " +
                                std::to_string(n) + ", " + std::to_string(k) + ", " +
                                std::to_string(stride) + ", " + std::to_string(dilation));
        const WindowAxis a = window_axis(n, k, stride, dilation,
                                         same_padding("window_axis", padding));
        if (!a.fits) return py::none();
        return py::make_tuple(a.out, a.pad_before);
      },
      py::arg("n"), py::arg("k"), py::arg("stride"), py::arg("dilation"), py::arg("padding"),
      "(output length, padding before) of a sliding window along one axis, TensorFlow's "
      "arithmetic; None when a 'valid' window does not fit.");
  m.def("conv2d_forward", &conv2d_forward<I>, py::arg("x"), py::arg("kernel"), py::arg("bias"),
        py::arg("strides"), py::arg("padding"), py::arg("dilation"), py::arg("activation"),
        "y = act(conv2d(x, kernel) + bias): x (N, H, W, C), kernel (R, S, C, K), bias (K,) or "
        "None, strides and dilation (h, w), padding 'valid' or 'same' (TensorFlow's), "
        "activation a code of ACTIVATIONS but leaky_relu -> y (N, P, Q, K).");
  m.def("conv2d_backward", &conv2d_backward<I>, py::arg("dy"), py::arg("x"), py::arg("kernel"),
        py::arg("y"), py::arg("strides"), py::arg("padding"), py::arg("dilation"),
        py::arg("activation"), py::arg("dkernel"), py::arg("dbias"), py::arg("need_dx") = true,
        py::arg("accumulate") = true,
        "Adds the kernel and bias gradients into dkernel and dbias (or writes them when "
        "accumulate is False), with dz = dy * act'(y); returns dx (N, H, W, C), or None when "
        "need_dx is False.");
  if constexpr (I != Impl::fast) return;  // the fast kernels' choices: on dlfast._core only
  m.def("conv2d_paths", &conv2d_paths, py::arg("x_shape"), py::arg("kernel_shape"),
        py::arg("strides"), py::arg("padding"), py::arg("dilation"), py::arg("dtype"),
        py::arg("need_dx") = true,
        "The paths conv2d_forward and conv2d_backward take for these shapes on the active "
        "ISA, as the kernels choose them: a dict {'forward', 'dx', 'dw'} of path names (for "
        "tests).");
  m.def("conv2d_path_names", &conv2d_path_names,
        "Every name conv2d_paths can give, per key: {'forward', 'dx', 'dw'} -> tuple.");
}

template void bind_conv<Impl::fast>(py::module_& m);
template void bind_conv<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
