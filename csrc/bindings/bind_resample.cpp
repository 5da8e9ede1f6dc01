// dlfast._core nearest-neighbour upsampling and zero padding on NHWC (see
// csrc/cpu/resample.cpp for the math): UpSampling2D and ZeroPadding2D.
#include <string>
#include <vector>

#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {
namespace {

// `count` ints >= `min` from a tuple or list (argument `name` of `fn`); `form` names the
// expected form in the messages.
std::vector<int64_t> int_values(py::handle obj, const char* fn, const char* name, size_t count,
                                int64_t min, const char* form) {
  const std::string bad = std::string(fn) + ": argument '" + name + "' must be " + form +
                          (min > 0 ? " of positive ints" : " of non-negative ints") + ", got ";
  if (!py::isinstance<py::tuple>(obj) && !py::isinstance<py::list>(obj))
    throw py::type_error(bad + describe(obj));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
  if (seq.size() != count) throw py::value_error(bad + std::string(py::repr(obj)));
  std::vector<int64_t> v;
  for (size_t i = 0; i < count; ++i) {
    py::handle e = seq[i];
    if (py::isinstance<py::bool_>(e) || !py::isinstance<py::int_>(e))
      throw py::type_error(bad + std::string(py::repr(obj)));
    v.push_back(e.cast<int64_t>());
    if (v.back() < min) throw py::value_error(bad + std::string(py::repr(obj)));
  }
  return v;
}

// a * b, or ValueError when it does not fit in int64 (then no array of that size exists).
int64_t checked_product(const char* fn, int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_mul_overflow(a, b, &out))
    throw py::value_error(std::string(fn) + ": the output would have more than 2^63 elements (" +
                          std::to_string(a) + " x " + std::to_string(b) + ")");
  return out;
}

// The shape of an array of the output dimensions, each checked to fit, and their product too.
std::vector<int64_t> checked_shape(const char* fn, std::vector<int64_t> shape) {
  int64_t size = 1;
  for (int64_t d : shape) size = checked_product(fn, size, d);
  return shape;
}

Upsample2dShape upsample_shape(const char* fn, const std::vector<int64_t>& x, py::handle size) {
  const std::vector<int64_t> v = int_values(size, fn, "size", 2, 1, "a pair (size_h, size_w)");
  return Upsample2dShape{x[0], x[1], x[2], x[3], v[0], v[1]};
}

template <Impl I>
py::object upsampling2d_forward(py::handle x_obj, py::handle size) {
  const char* fn = "upsampling2d_forward";
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto x = array_arg<T>(x_obj, fn, "x", 4);
    const Upsample2dShape s = upsample_shape(fn, x.shape, size);
    auto y = new_array<T>(checked_shape(
        fn, {s.N, checked_product(fn, s.H, s.size_h), checked_product(fn, s.W, s.size_w), s.C}));
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).upsampling2d_forward(yp, x.data, s);
    }
    return std::move(y);
  });
}

// dy is (N, H*size_h, W*size_w, C): its height and width must be multiples of the size.
template <Impl I>
py::object upsampling2d_backward(py::handle dy_obj, py::handle size) {
  const char* fn = "upsampling2d_backward";
  return dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dy = array_arg<T>(dy_obj, fn, "dy", 4);
    const std::vector<int64_t> v = int_values(size, fn, "size", 2, 1, "a pair (size_h, size_w)");
    if (dy.dim(1) % v[0] != 0 || dy.dim(2) % v[1] != 0)
      throw py::value_error(std::string(fn) + ": 'dy' (N, H*size_h, W*size_w, C) must have a "
                            "height divisible by size_h = " + std::to_string(v[0]) +
                            " and a width divisible by size_w = " + std::to_string(v[1]) +
                            ", got shape " + shape_string(dy.shape));
    const Upsample2dShape s{dy.dim(0), dy.dim(1) / v[0], dy.dim(2) / v[1], dy.dim(3), v[0], v[1]};
    auto dx = new_array<T>({s.N, s.H, s.W, s.C});
    T* dxp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).upsampling2d_backward(dxp, dy.data, s);
    }
    return std::move(dx);
  });
}

// padding ((top, bottom), (left, right)), each >= 0, as Keras's ZeroPadding2D holds it.
Pad2dShape pad_shape(const char* fn, const std::vector<int64_t>& x, py::handle padding) {
  const char* form = "((top, bottom), (left, right))";
  const std::string bad = std::string(fn) + ": argument 'padding' must be " + form +
                          " of non-negative ints, got ";
  if (!py::isinstance<py::tuple>(padding) && !py::isinstance<py::list>(padding))
    throw py::type_error(bad + describe(padding));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(padding);
  if (seq.size() != 2) throw py::value_error(bad + std::string(py::repr(padding)));
  const std::vector<int64_t> hp = int_values(seq[0], fn, "padding", 2, 0, form);
  const std::vector<int64_t> wp = int_values(seq[1], fn, "padding", 2, 0, form);
  return Pad2dShape{x[0], x[1], x[2], x[3], hp[0], hp[1], wp[0], wp[1]};
}

template <Impl I>
py::object zeropadding2d_forward(py::handle x_obj, py::handle padding) {
  const char* fn = "zeropadding2d_forward";
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto x = array_arg<T>(x_obj, fn, "x", 4);
    const Pad2dShape s = pad_shape(fn, x.shape, padding);
    int64_t P, Q;
    if (__builtin_add_overflow(s.H, s.pad_top, &P) || __builtin_add_overflow(P, s.pad_bottom, &P) ||
        __builtin_add_overflow(s.W, s.pad_left, &Q) || __builtin_add_overflow(Q, s.pad_right, &Q))
      throw py::value_error(std::string(fn) + ": the padded size does not fit in int64");
    auto y = new_array<T>(checked_shape(fn, {s.N, P, Q, s.C}));
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).zeropadding2d_forward(yp, x.data, s);
    }
    return std::move(y);
  });
}

// dy is (N, top + H + bottom, left + W + right, C); dx (N, H, W, C) its interior.
template <Impl I>
py::object zeropadding2d_backward(py::handle dy_obj, py::handle padding) {
  const char* fn = "zeropadding2d_backward";
  return dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dy = array_arg<T>(dy_obj, fn, "dy", 4);
    Pad2dShape s = pad_shape(fn, dy.shape, padding);
    // the pads are each below 2^63 and so is their sum's half: compare without adding them
    if (s.pad_top > dy.dim(1) || s.pad_bottom > dy.dim(1) - s.pad_top ||
        s.pad_left > dy.dim(2) || s.pad_right > dy.dim(2) - s.pad_left)
      throw py::value_error(std::string(fn) + ": 'dy' (N, top + H + bottom, left + W + right, "
                            "C) must be at least the padding " + std::to_string(s.pad_top) +
                            " + " + std::to_string(s.pad_bottom) + " high and " +
                            std::to_string(s.pad_left) + " + " + std::to_string(s.pad_right) +
                            " wide, got shape " + shape_string(dy.shape));
    s.H = dy.dim(1) - s.pad_top - s.pad_bottom;
    s.W = dy.dim(2) - s.pad_left - s.pad_right;
    auto dx = new_array<T>({s.N, s.H, s.W, s.C});
    T* dxp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).zeropadding2d_backward(dxp, dy.data, s);
    }
    return std::move(dx);
  });
}

}  // namespace

template <Impl I>
void bind_resample(py::module_& m) {
  m.def("upsampling2d_forward", &upsampling2d_forward<I>, py::arg("x"), py::arg("size"),
        "y (N, H*size_h, W*size_w, C): each cell of x (N, H, W, C) repeated over a "
        "size_h x size_w block (nearest neighbour); size is a pair (size_h, size_w).");
  m.def("upsampling2d_backward", &upsampling2d_backward<I>, py::arg("dy"), py::arg("size"),
        "dx (N, H, W, C): the sum of dy (N, H*size_h, W*size_w, C) over each block.");
  m.def("zeropadding2d_forward", &zeropadding2d_forward<I>, py::arg("x"), py::arg("padding"),
        "y (N, top + H + bottom, left + W + right, C): x (N, H, W, C) framed by zeros; padding "
        "is ((top, bottom), (left, right)).");
  m.def("zeropadding2d_backward", &zeropadding2d_backward<I>, py::arg("dy"), py::arg("padding"),
        "dx (N, H, W, C): the interior of dy (N, top + H + bottom, left + W + right, C).");
}

template void bind_resample<Impl::fast>(py::module_& m);
template void bind_resample<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
