// Argument checks shared by every binding: what was expected and what came, naming the
// argument, as ValueError/TypeError. A kernel never sees an invalid size or pointer.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bindings/impl.h"

namespace py = pybind11;

namespace dlfast {
namespace bind {

enum class FloatType { f32, f64 };

// "float32 array of shape (3, 4)", "list", "int64 array of shape (5,)"...
std::string describe(py::handle obj);
std::string shape_string(const std::vector<int64_t>& shape);
// "0..n-1 (names[0], ..., names[n-1])": the codes an enum argument takes (dispatch.h's lists).
std::string code_list(const char* const* names, int n);

// The floating dtype of array argument `name` of `fn`; TypeError for anything else.
FloatType float_type(py::handle obj, const char* fn, const char* name);

template <typename T>
struct Array {
  T* data = nullptr;
  std::vector<int64_t> shape;
  int64_t size = 0;
  int64_t dim(size_t i) const { return shape[i]; }
};

// A checked view of argument `name`: a NumPy array of exactly dtype T, C-contiguous, of rank
// `ndim` (any rank when ndim < 0), writable when asked. TypeError/ValueError otherwise.
template <typename T>
Array<T> array_arg(py::handle obj, const char* fn, const char* name, int ndim,
                   bool writable = false);

// ValueError "fn: <what>: expected <expected>, got <actual>" unless actual == expected.
void expect_dim(const char* fn, const std::string& what, int64_t actual, int64_t expected);

template <typename T>
py::array_t<T> new_array(const std::vector<int64_t>& shape) {
  return py::array_t<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

// Calls f(float{}) or f(double{}).
template <typename F>
py::object dispatch_float(FloatType t, F&& f) {
  if (t == FloatType::f32) return f(float{});
  return f(double{});
}

// Registration of each op family (one file each), onto `m`: the fast kernels for Impl::fast
// (dlfast._core), the references for Impl::ref (dlfast._core.ref, see bind_ref.cpp).
template <Impl I> void bind_gemm(py::module_& m);
template <Impl I> void bind_dense(py::module_& m);
template <Impl I> void bind_activation(py::module_& m);
template <Impl I> void bind_loss(py::module_& m);
template <Impl I> void bind_optimizer(py::module_& m);
template <Impl I> void bind_conv(py::module_& m);
template <Impl I> void bind_pool(py::module_& m);
template <Impl I> void bind_lstm(py::module_& m);
template <Impl I> void bind_batchnorm(py::module_& m);
template <Impl I> void bind_regularizer(py::module_& m);
template <Impl I> void bind_resample(py::module_& m);
template <Impl I> void bind_conv_transpose(py::module_& m);
template <Impl I> void bind_layernorm(py::module_& m);
template <Impl I> void bind_embedding(py::module_& m);
template <Impl I> void bind_gru(py::module_& m);
template <Impl I> void bind_simple_rnn(py::module_& m);
// dlfast._core.ref: every family above again, on the reference kernels.
void bind_ref(py::module_& m);

}  // namespace bind
}  // namespace dlfast
