// dlfast._core.batchnorm_forward / batchnorm_backward (see csrc/cpu/batchnorm.cpp for the
// math). x may have any rank >= 1: its last axis holds the C channels, the others are rows.
#include <cmath>
#include <string>

#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {
namespace {

// A per-channel vector argument: None (when allowed) or a (C,) array of dtype T.
template <typename T>
T* channel_arg(py::handle obj, const char* fn, const char* name, int64_t C, bool writable,
               bool optional) {
  if (optional && obj.is_none()) return nullptr;
  auto a = array_arg<T>(obj, fn, name, 1, writable);
  expect_dim(fn, std::string(name) + ".shape[0] (channels, the last axis of 'x')", a.dim(0), C);
  return a.data;
}

// Rows and channels of x (rank >= 1, at least one channel).
template <typename T>
void rows_channels(const Array<T>& x, const char* fn, int64_t& R, int64_t& C) {
  if (x.shape.empty())
    throw py::value_error(std::string(fn) + ": 'x' must have a channel axis (rank >= 1), got "
                          "a scalar");
  C = x.shape.back();
  if (C < 1)
    throw py::value_error(std::string(fn) + ": 'x' must have at least one channel on its last "
                          "axis, got shape " + shape_string(x.shape));
  R = x.size / C;
}

template <Impl I>
py::object batchnorm_forward(py::handle x_obj, py::handle gamma_obj, py::handle beta_obj,
                             py::handle mm_obj, py::handle mv_obj, double momentum,
                             double epsilon, bool training) {
  const char* fn = "batchnorm_forward";
  if (!(momentum >= 0.0 && momentum <= 1.0))
    throw py::value_error(std::string(fn) + ": 'momentum' must be in [0, 1], got " +
                          std::to_string(momentum));
  if (!(epsilon > 0.0) || !std::isfinite(epsilon))
    throw py::value_error(std::string(fn) + ": 'epsilon' must be a positive number, got " +
                          std::to_string(epsilon));
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto x = array_arg<T>(x_obj, fn, "x", -1);
    int64_t R, C;
    rows_channels(x, fn, R, C);
    if (training && R == 0)
      throw py::value_error(std::string(fn) + ": training needs at least one row to take "
                            "batch statistics from, got 'x' of shape " + shape_string(x.shape));
    const T* gamma = channel_arg<T>(gamma_obj, fn, "gamma", C, false, true);
    const T* beta = channel_arg<T>(beta_obj, fn, "beta", C, false, true);
    // Written in training only, but always (C,) arrays of x's dtype.
    T* mm = channel_arg<T>(mm_obj, fn, "moving_mean", C, training, false);
    T* mv = channel_arg<T>(mv_obj, fn, "moving_variance", C, training, false);
    auto y = new_array<T>(x.shape);
    auto mean = new_array<T>({C});
    auto inv_std = new_array<T>({C});
    T* yp = y.mutable_data();
    T* meanp = mean.mutable_data();
    T* isp = inv_std.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).batchnorm_forward(yp, meanp, isp, mm, mv, x.data, gamma, beta, R, C,
                                     momentum, epsilon, training);
    }
    return py::make_tuple(std::move(y), std::move(mean), std::move(inv_std));
  });
}

template <Impl I>
py::object batchnorm_backward(py::handle dy_obj, py::handle x_obj, py::handle gamma_obj,
                              py::handle mean_obj, py::handle inv_std_obj, bool training,
                              py::handle dgamma_obj, py::handle dbeta_obj, bool need_dx,
                              bool accumulate) {
  const char* fn = "batchnorm_backward";
  return dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dy = array_arg<T>(dy_obj, fn, "dy", -1);
    auto x = array_arg<T>(x_obj, fn, "x", -1);
    if (dy.shape != x.shape)
      throw py::value_error(std::string(fn) + ": 'dy' must have the shape of 'x' " +
                            shape_string(x.shape) + ", got " + shape_string(dy.shape));
    int64_t R, C;
    rows_channels(x, fn, R, C);
    const T* gamma = channel_arg<T>(gamma_obj, fn, "gamma", C, false, true);
    const T* mean = channel_arg<T>(mean_obj, fn, "mean", C, false, false);
    const T* inv_std = channel_arg<T>(inv_std_obj, fn, "inv_std", C, false, false);
    T* dgamma = channel_arg<T>(dgamma_obj, fn, "dgamma", C, true, true);
    T* dbeta = channel_arg<T>(dbeta_obj, fn, "dbeta", C, true, true);
    py::object result = py::none();
    T* dx = nullptr;
    if (need_dx) {
      auto dxa = new_array<T>(x.shape);
      dx = dxa.mutable_data();
      result = std::move(dxa);
    }
    {
      py::gil_scoped_release nogil;
      table<T>(I).batchnorm_backward(dx, dgamma, dbeta, dy.data, x.data, gamma, mean, inv_std,
                                      R, C, training, accumulate);
    }
    return result;
  });
}

}  // namespace

template <Impl I>
void bind_batchnorm(py::module_& m) {
  m.def("batchnorm_forward", &batchnorm_forward<I>, py::arg("x"), py::arg("gamma"),
        py::arg("beta"), py::arg("moving_mean"), py::arg("moving_variance"),
        py::arg("momentum"), py::arg("epsilon"), py::arg("training"),
        "Batch normalization over x's last axis; returns (y, mean, inv_std). Training uses the "
        "batch statistics and updates moving_mean/moving_variance in place; inference uses "
        "them. gamma/beta may be None.");
  m.def("batchnorm_backward", &batchnorm_backward<I>, py::arg("dy"), py::arg("x"),
        py::arg("gamma"), py::arg("mean"), py::arg("inv_std"), py::arg("training"),
        py::arg("dgamma"), py::arg("dbeta"), py::arg("need_dx") = true,
        py::arg("accumulate") = true,
        "Adds (or writes, accumulate=False) dgamma and dbeta (either may be None); returns dx "
        "(through the batch statistics when training), or None when need_dx is False.");
}

template void bind_batchnorm<Impl::fast>(py::module_& m);
template void bind_batchnorm<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
