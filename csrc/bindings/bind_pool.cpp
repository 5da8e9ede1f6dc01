// dlfast._core max/average pooling bindings (see csrc/cpu/pool.cpp for the math). The output
// size and the padding follow TensorFlow: 'valid' P = (H - R) / sh + 1; 'same' P = ceil(H / sh)
// with total padding max((P - 1) * sh + R - H, 0), the smaller half on top (left).
#include <string>

#include "bindings/array_check.h"
#include "bindings/conv_args.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {
namespace {

// A pair of positive ints (a tuple or list of two ints) for argument `name`.
void int_pair(py::handle obj, const char* fn, const char* name, int64_t& a, int64_t& b) {
  const std::string bad = std::string(fn) + ": argument '" + name + "' must be a pair of ";
  if (!py::isinstance<py::tuple>(obj) && !py::isinstance<py::list>(obj))
    throw py::type_error(bad + "ints (a, b), got " + describe(obj));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
  if (seq.size() != 2)
    throw py::value_error(bad + "ints (a, b), got " + std::to_string(seq.size()) + " values: " +
                          std::string(py::repr(obj)));
  int64_t v[2];
  for (size_t i = 0; i < 2; ++i) {
    py::handle e = seq[i];
    if (py::isinstance<py::bool_>(e) || !py::isinstance<py::int_>(e))
      throw py::type_error(bad + "ints (a, b), got " + std::string(py::repr(obj)));
    v[i] = e.cast<int64_t>();
  }
  if (v[0] < 1 || v[1] < 1)
    throw py::value_error(bad + "positive ints (each >= 1), got " + std::string(py::repr(obj)));
  a = v[0];
  b = v[1];
}

// The output length along one axis and the padding before it (TensorFlow's arithmetic).
void output_length(const char* fn, const char* axis, int64_t n, int64_t k, int64_t stride,
                   bool same, int64_t& out, int64_t& pad_before) {
  const WindowAxis a = window_axis(n, k, stride, 1, same);
  if (!a.fits)
    throw py::value_error(std::string(fn) + ": pool window " + axis + " " + std::to_string(k) +
                          " is larger than the input " + axis + " " + std::to_string(n) +
                          " with padding 'valid' (use padding 'same' or a smaller pool)");
  out = a.out;
  pad_before = a.pad_before;
}

// The full pooling geometry from the input shape and the Python-level arguments.
Pool2dShape pool_shape(const char* fn, const std::vector<int64_t>& in, py::handle pool,
                       py::handle strides, py::handle padding) {
  Pool2dShape s{};
  s.N = in[0];
  s.H = in[1];
  s.W = in[2];
  s.C = in[3];
  int_pair(pool, fn, "pool", s.R, s.S);
  int_pair(strides, fn, "strides", s.stride_h, s.stride_w);
  if (!py::isinstance<py::str>(padding))
    throw py::type_error(std::string(fn) + ": argument 'padding' must be 'valid' or 'same', got " +
                         describe(padding));
  const std::string pad = padding.cast<std::string>();
  if (pad != "valid" && pad != "same")
    throw py::value_error(std::string(fn) + ": argument 'padding' must be 'valid' or 'same', "
                          "got '" + pad + "'");
  const bool same = pad == "same";
  output_length(fn, "height", s.H, s.R, s.stride_h, same, s.P, s.pad_top);
  output_length(fn, "width", s.W, s.S, s.stride_w, same, s.Q, s.pad_left);
  return s;
}

// dy must be (N, P, Q, C) for the geometry s.
void check_dy(const char* fn, const std::vector<int64_t>& dy, const Pool2dShape& s) {
  const std::vector<int64_t> want{s.N, s.P, s.Q, s.C};
  if (dy != want)
    throw py::value_error(std::string(fn) + ": 'dy' must have the pooling output's shape " +
                          shape_string(want) + " (N, P, Q, C), got " + shape_string(dy));
}

// Max and average forward differ only in the kernel they call.
template <bool kMax, Impl I>
py::object pool_forward(py::handle x_obj, py::handle pool, py::handle strides,
                        py::handle padding) {
  const char* fn = kMax ? "maxpool2d_forward" : "avgpool2d_forward";
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto x = array_arg<T>(x_obj, fn, "x", 4);
    const Pool2dShape s = pool_shape(fn, x.shape, pool, strides, padding);
    auto y = new_array<T>({s.N, s.P, s.Q, s.C});
    T* yp = y.mutable_data();
    const auto kernel = kMax ? table<T>(I).maxpool2d_forward : table<T>(I).avgpool2d_forward;
    {
      py::gil_scoped_release nogil;
      kernel(yp, x.data, s);
    }
    return std::move(y);
  });
}

template <Impl I>
py::object maxpool2d_backward(py::handle dy_obj, py::handle x_obj, py::handle pool,
                              py::handle strides, py::handle padding) {
  const char* fn = "maxpool2d_backward";
  return dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dy = array_arg<T>(dy_obj, fn, "dy", 4);
    auto x = array_arg<T>(x_obj, fn, "x", 4);
    const Pool2dShape s = pool_shape(fn, x.shape, pool, strides, padding);
    check_dy(fn, dy.shape, s);
    auto dx = new_array<T>(x.shape);
    T* dxp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).maxpool2d_backward(dxp, dy.data, x.data, s);
    }
    return std::move(dx);
  });
}

// input_shape: the forward input's (N, H, W, C), ints >= 0 (the forward takes empty arrays).
std::vector<int64_t> input_shape_arg(py::handle obj, const char* fn) {
  const std::string bad = std::string(fn) + ": argument 'input_shape' must be a tuple of 4 "
                          "non-negative ints (N, H, W, C), got ";
  if (!py::isinstance<py::tuple>(obj) && !py::isinstance<py::list>(obj))
    throw py::type_error(bad + describe(obj));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
  if (seq.size() != 4) throw py::value_error(bad + std::string(py::repr(obj)));
  std::vector<int64_t> shape;
  for (size_t i = 0; i < 4; ++i) {
    py::handle e = seq[i];
    if (py::isinstance<py::bool_>(e) || !py::isinstance<py::int_>(e))
      throw py::type_error(bad + std::string(py::repr(obj)));
    shape.push_back(e.cast<int64_t>());
    if (shape.back() < 0) throw py::value_error(bad + std::string(py::repr(obj)));
  }
  return shape;
}

template <Impl I>
py::object avgpool2d_backward(py::handle dy_obj, py::handle shape_obj, py::handle pool,
                              py::handle strides, py::handle padding) {
  const char* fn = "avgpool2d_backward";
  return dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dy = array_arg<T>(dy_obj, fn, "dy", 4);
    const std::vector<int64_t> shape = input_shape_arg(shape_obj, fn);
    const Pool2dShape s = pool_shape(fn, shape, pool, strides, padding);
    check_dy(fn, dy.shape, s);
    auto dx = new_array<T>(shape);
    T* dxp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).avgpool2d_backward(dxp, dy.data, s);
    }
    return std::move(dx);
  });
}

}  // namespace

template <Impl I>
void bind_pool(py::module_& m) {
  m.def("maxpool2d_forward", &pool_forward<true, I>, py::arg("x"), py::arg("pool"),
        py::arg("strides"), py::arg("padding"),
        "y (N, P, Q, C) = max over each pool window of x (N, H, W, C); padding is 'valid' or "
        "'same' (TensorFlow's arithmetic, padded with -inf).");
  m.def("maxpool2d_backward", &maxpool2d_backward<I>, py::arg("dy"), py::arg("x"), py::arg("pool"),
        py::arg("strides"), py::arg("padding"),
        "dx (N, H, W, C): each dy goes to the first maximum of its window (recomputed from x), "
        "summed where windows overlap.");
  m.def("avgpool2d_forward", &pool_forward<false, I>, py::arg("x"), py::arg("pool"),
        py::arg("strides"), py::arg("padding"),
        "y (N, P, Q, C) = mean over the input cells of each pool window (padding not counted).");
  m.def("avgpool2d_backward", &avgpool2d_backward<I>, py::arg("dy"), py::arg("input_shape"),
        py::arg("pool"), py::arg("strides"), py::arg("padding"),
        "dx (input_shape) = each dy / count spread over the input cells of its window.");
}

template void bind_pool<Impl::fast>(py::module_& m);
template void bind_pool<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
