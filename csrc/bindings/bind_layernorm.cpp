// dlfast._core.layernorm_forward / layernorm_backward (see csrc/cpu/layernorm.cpp for the
// math). x may have any rank >= 1: its last axis holds the C features that each row (every
// other index) is normalised over; mean and inv_std have x's shape without that axis.
#include <cmath>
#include <string>

#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {
namespace {

// A per-feature vector argument: None (when allowed) or a (C,) array of dtype T.
template <typename T>
T* feature_arg(py::handle obj, const char* fn, const char* name, int64_t C, bool writable) {
  if (obj.is_none()) return nullptr;
  auto a = array_arg<T>(obj, fn, name, 1, writable);
  expect_dim(fn, std::string(name) + ".shape[0] (features, the last axis of 'x')", a.dim(0), C);
  return a.data;
}

// Rows and features of x (rank >= 1, at least one feature).
template <typename T>
void rows_features(const Array<T>& x, const char* fn, int64_t& R, int64_t& C) {
  if (x.shape.empty())
    throw py::value_error(std::string(fn) + ": 'x' must have a feature axis (rank >= 1), got "
                          "a scalar");
  C = x.shape.back();
  if (C < 1)
    throw py::value_error(std::string(fn) + ": 'x' must have at least one feature on its last "
                          "axis, got shape " + shape_string(x.shape));
  R = x.size / C;
}

// A per-row statistic (mean or inv_std): x's shape without its last axis.
template <typename T>
const T* row_stat(py::handle obj, const char* fn, const char* name, const Array<T>& x) {
  auto a = array_arg<T>(obj, fn, name, -1);
  const std::vector<int64_t> want(x.shape.begin(), x.shape.end() - 1);
  if (a.shape != want)
    throw py::value_error(std::string(fn) + ": '" + name + "' must have shape " +
                          shape_string(want) + " ('x' without its last axis), got " +
                          shape_string(a.shape));
  return a.data;
}

template <Impl I>
py::object layernorm_forward(py::handle x_obj, py::handle gamma_obj, py::handle beta_obj,
                             double epsilon) {
  const char* fn = "layernorm_forward";
  if (!(epsilon > 0.0) || !std::isfinite(epsilon))
    throw py::value_error(std::string(fn) + ": 'epsilon' must be a positive number, got " +
                          std::to_string(epsilon));
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto x = array_arg<T>(x_obj, fn, "x", -1);
    int64_t R, C;
    rows_features(x, fn, R, C);
    const T* gamma = feature_arg<T>(gamma_obj, fn, "gamma", C, false);
    const T* beta = feature_arg<T>(beta_obj, fn, "beta", C, false);
    auto y = new_array<T>(x.shape);
    const std::vector<int64_t> stat_shape(x.shape.begin(), x.shape.end() - 1);
    auto mean = new_array<T>(stat_shape);
    auto inv_std = new_array<T>(stat_shape);
    T* yp = y.mutable_data();
    T* mp = mean.mutable_data();
    T* sp = inv_std.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).layernorm_forward(yp, mp, sp, x.data, gamma, beta, R, C, epsilon);
    }
    return py::make_tuple(std::move(y), std::move(mean), std::move(inv_std));
  });
}

template <Impl I>
py::object layernorm_backward(py::handle dy_obj, py::handle x_obj, py::handle gamma_obj,
                              py::handle mean_obj, py::handle inv_std_obj, py::handle dgamma_obj,
                              py::handle dbeta_obj, bool need_dx, bool accumulate) {
  const char* fn = "layernorm_backward";
  return dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dy = array_arg<T>(dy_obj, fn, "dy", -1);
    auto x = array_arg<T>(x_obj, fn, "x", -1);
    if (dy.shape != x.shape)
      throw py::value_error(std::string(fn) + ": 'dy' must have the shape of 'x' " +
                            shape_string(x.shape) + ", got " + shape_string(dy.shape));
    int64_t R, C;
    rows_features(x, fn, R, C);
    const T* gamma = feature_arg<T>(gamma_obj, fn, "gamma", C, false);
    const T* mean = row_stat<T>(mean_obj, fn, "mean", x);
    const T* inv_std = row_stat<T>(inv_std_obj, fn, "inv_std", x);
    T* dgamma = feature_arg<T>(dgamma_obj, fn, "dgamma", C, true);
    T* dbeta = feature_arg<T>(dbeta_obj, fn, "dbeta", C, true);
    py::object result = py::none();
    T* dx = nullptr;
    if (need_dx) {
      auto dxa = new_array<T>(x.shape);
      dx = dxa.mutable_data();
      result = std::move(dxa);
    }
    {
      py::gil_scoped_release nogil;
      table<T>(I).layernorm_backward(dx, dgamma, dbeta, dy.data, x.data, gamma, mean, inv_std,
                                      R, C, accumulate);
    }
    return result;
  });
}

}  // namespace

template <Impl I>
void bind_layernorm(py::module_& m) {
  m.def("layernorm_forward", &layernorm_forward<I>, py::arg("x"), py::arg("gamma"),
        py::arg("beta"), py::arg("epsilon") = 1e-3,
        "Layer normalization over x's last axis (Keras's LayerNormalization(axis=-1), "
        "epsilon 1e-3): gamma, beta (C,) or None; returns (y, mean, inv_std), the statistics "
        "of shape x.shape[:-1].");
  m.def("layernorm_backward", &layernorm_backward<I>, py::arg("dy"), py::arg("x"),
        py::arg("gamma"), py::arg("mean"), py::arg("inv_std"), py::arg("dgamma"),
        py::arg("dbeta"), py::arg("need_dx") = true, py::arg("accumulate") = true,
        "Adds (or writes, accumulate=False) dgamma and dbeta (either may be None); returns dx, "
        "or None when need_dx is False.");
}

template void bind_layernorm<Impl::fast>(py::module_& m);
template void bind_layernorm<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
