// dlfast._core.gru_forward / gru_backward (see csrc/cpu/gru.cpp for the math): Keras 3's GRU
// with reset_after=True and its weight layout, kernel (D, 3U), recurrent_kernel (U, 3U),
// bias (2, 3U) (input bias, recurrent bias), gates z, r, h~.
#include <string>

#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {
namespace {

template <typename T>
struct GruArgs {
  Array<T> x, w, r;
  const T* h0 = nullptr;
  LstmShape s{};
};

template <typename T>
const T* state_arg(const char* fn, const char* name, py::handle obj, int64_t N, int64_t U) {
  if (obj.is_none()) return nullptr;
  auto a = array_arg<T>(obj, fn, name, 2);
  if (a.dim(0) != N || a.dim(1) != U)
    throw py::value_error(std::string(fn) + ": '" + name + "' must have shape (batch, units) = " +
                          shape_string({N, U}) + ", got " + shape_string(a.shape));
  return a.data;
}

template <typename T>
GruArgs<T> gru_args(const char* fn, py::handle x_obj, py::handle w_obj, py::handle r_obj,
                    py::handle h0_obj) {
  GruArgs<T> a{array_arg<T>(x_obj, fn, "x", 3), array_arg<T>(w_obj, fn, "kernel", 2),
               array_arg<T>(r_obj, fn, "recurrent_kernel", 2)};
  LstmShape& s = a.s;
  s.N = a.x.dim(0), s.L = a.x.dim(1), s.D = a.x.dim(2), s.U = a.r.dim(0);
  if (s.U < 1 || a.r.dim(1) != 3 * s.U)
    throw py::value_error(std::string(fn) + ": 'recurrent_kernel' must have shape (units, "
                          "3*units) with units >= 1, got " + shape_string(a.r.shape));
  if (a.w.dim(0) != s.D || a.w.dim(1) != 3 * s.U)
    throw py::value_error(std::string(fn) + ": 'kernel' must have shape (features, 3*units) = " +
                          shape_string({s.D, 3 * s.U}) + " for 'x' of shape " +
                          shape_string(a.x.shape) + " and 'recurrent_kernel' of shape " +
                          shape_string(a.r.shape) + ", got " + shape_string(a.w.shape));
  if (s.L < 1)
    throw py::value_error(std::string(fn) + ": 'x' must have at least one time step, got "
                          "shape " + shape_string(a.x.shape));
  a.h0 = state_arg<T>(fn, "h0", h0_obj, s.N, s.U);
  return a;
}

template <typename T>
T* bias_arg(const char* fn, const char* name, py::handle obj, int64_t U, bool writable) {
  if (obj.is_none()) return nullptr;
  auto a = array_arg<T>(obj, fn, name, -1, writable);
  const std::vector<int64_t> want{2, 3 * U};
  if (a.shape != want)
    throw py::value_error(std::string(fn) + ": '" + name + "' must have shape (2, 3*units) = " +
                          shape_string(want) + " (Keras's reset_after layout: input bias, "
                          "recurrent bias), got " + shape_string(a.shape));
  return a.data;
}

template <typename T>
const T* sequence_arg(const char* fn, const char* name, py::handle obj, const LstmShape& s,
                      int64_t width) {
  auto a = array_arg<T>(obj, fn, name, 3);
  const std::vector<int64_t> want{s.N, s.L, width};
  if (a.shape != want)
    throw py::value_error(std::string(fn) + ": '" + name + "' must have shape " +
                          shape_string(want) + ", got " + shape_string(a.shape));
  return a.data;
}

template <Impl I>
py::object gru_forward(py::handle x_obj, py::handle w_obj, py::handle r_obj, py::handle b_obj,
                       py::handle h0_obj) {
  const char* fn = "gru_forward";
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const GruArgs<T> a = gru_args<T>(fn, x_obj, w_obj, r_obj, h0_obj);
    const LstmShape s = a.s;
    const T* b = bias_arg<T>(fn, "bias", b_obj, s.U, false);
    auto H = new_array<T>({s.N, s.L, s.U});
    auto Z = new_array<T>({s.N, s.L, 4 * s.U});
    T *hp = H.mutable_data(), *zp = Z.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).gru_forward(hp, zp, a.x.data, a.w.data, a.r.data, b, a.h0, s);
    }
    return py::make_tuple(std::move(H), std::move(Z));
  });
}

template <Impl I>
py::object gru_backward(py::handle dH_obj, py::handle dhL_obj, py::handle x_obj,
                        py::handle w_obj, py::handle r_obj, py::handle h0_obj, py::handle H_obj,
                        py::handle Z_obj, py::handle dw_obj, py::handle dr_obj,
                        py::handle db_obj, bool need_dx, bool need_dstate, bool accumulate) {
  const char* fn = "gru_backward";
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const GruArgs<T> a = gru_args<T>(fn, x_obj, w_obj, r_obj, h0_obj);
    const LstmShape s = a.s;
    const T* dH = dH_obj.is_none() ? nullptr : sequence_arg<T>(fn, "dH", dH_obj, s, s.U);
    const T* dhL = state_arg<T>(fn, "dh_last", dhL_obj, s.N, s.U);
    const T* H = sequence_arg<T>(fn, "H", H_obj, s, s.U);
    const T* Z = sequence_arg<T>(fn, "Z", Z_obj, s, 4 * s.U);
    auto dw = array_arg<T>(dw_obj, fn, "dkernel", 2, true);
    auto dr = array_arg<T>(dr_obj, fn, "drecurrent_kernel", 2, true);
    if (dw.shape != a.w.shape)
      throw py::value_error(std::string(fn) + ": 'dkernel' must have the kernel's shape " +
                            shape_string(a.w.shape) + ", got " + shape_string(dw.shape));
    if (dr.shape != a.r.shape)
      throw py::value_error(std::string(fn) + ": 'drecurrent_kernel' must have the recurrent "
                            "kernel's shape " + shape_string(a.r.shape) + ", got " +
                            shape_string(dr.shape));
    T* db = bias_arg<T>(fn, "dbias", db_obj, s.U, true);
    py::object dx_out = py::none(), dh0_out = py::none();
    T *dx = nullptr, *dh0 = nullptr;
    if (need_dx) {
      auto arr = new_array<T>({s.N, s.L, s.D});
      dx = arr.mutable_data();
      dx_out = std::move(arr);
    }
    if (need_dstate) {
      auto arr = new_array<T>({s.N, s.U});
      dh0 = arr.mutable_data();
      dh0_out = std::move(arr);
    }
    {
      py::gil_scoped_release nogil;
      table<T>(I).gru_backward(dx, dw.data, dr.data, db, dh0, dH, dhL, a.x.data, a.w.data,
                                a.r.data, a.h0, H, Z, s, accumulate);
    }
    return py::make_tuple(dx_out, dh0_out);
  });
}

}  // namespace

template <Impl I>
void bind_gru(py::module_& m) {
  m.def("gru_forward", &gru_forward<I>, py::arg("x"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"),
        "Every step of a GRU (Keras 3, reset_after=True, gates z, r, h~): x (N, L, D), kernel "
        "(D, 3U), recurrent_kernel (U, 3U), bias (2, 3U) or None, h0 (N, U) or None (zeros) "
        "-> (H, Z): h_t of every step (N, L, U) and per step [z, r, h~, h R_h + b_rec_h] "
        "(N, L, 4U), kept for backward.");
  m.def("gru_backward", &gru_backward<I>, py::arg("dH"), py::arg("dh_last"), py::arg("x"),
        py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("h0"), py::arg("H"),
        py::arg("Z"), py::arg("dkernel"), py::arg("drecurrent_kernel"), py::arg("dbias"),
        py::arg("need_dx") = true, py::arg("need_dstate") = false,
        py::arg("accumulate") = true,
        "Backward through time from dH (N, L, U) or None and dh_last (N, U) or None, given the "
        "forward's H and Z. Adds (or writes, accumulate=False) the weight gradients into "
        "dkernel, drecurrent_kernel, dbias (2, 3U) or None; returns (dx or None, dh0 or None).");
}

template void bind_gru<Impl::fast>(py::module_& m);
template void bind_gru<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
