// dlfast._core.lstm_forward / lstm_backward (see csrc/cpu/lstm.cpp for the math).
#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {
namespace {

// The checked inputs shared by forward and backward: x (N, L, D), kernel (D, 4U),
// recurrent_kernel (U, 4U), and the optional initial states h0, c0 (N, U).
template <typename T>
struct LstmArgs {
  Array<T> x, w, r;
  const T* h0 = nullptr;
  const T* c0 = nullptr;
  LstmShape s{};
};

template <typename T>
const T* optional_state(const char* fn, const char* name, py::handle obj, int64_t N, int64_t U) {
  if (obj.is_none()) return nullptr;
  auto a = array_arg<T>(obj, fn, name, 2);
  if (a.dim(0) != N || a.dim(1) != U)
    throw py::value_error(std::string(fn) + ": '" + name + "' must have shape (batch, units) = " +
                          shape_string({N, U}) + ", got " + shape_string(a.shape));
  return a.data;
}

template <typename T>
LstmArgs<T> lstm_args(const char* fn, py::handle x_obj, py::handle w_obj, py::handle r_obj,
                      py::handle h0_obj, py::handle c0_obj) {
  LstmArgs<T> a{array_arg<T>(x_obj, fn, "x", 3), array_arg<T>(w_obj, fn, "kernel", 2),
                array_arg<T>(r_obj, fn, "recurrent_kernel", 2)};
  LstmShape& s = a.s;
  s.N = a.x.dim(0), s.L = a.x.dim(1), s.D = a.x.dim(2), s.U = a.r.dim(0);
  if (s.U < 1 || a.r.dim(1) != 4 * s.U)
    throw py::value_error(std::string(fn) + ": 'recurrent_kernel' must have shape (units, "
                          "4*units) with units >= 1, got " + shape_string(a.r.shape));
  if (a.w.dim(0) != s.D || a.w.dim(1) != 4 * s.U)
    throw py::value_error(std::string(fn) + ": 'kernel' must have shape (features, 4*units) = " +
                          shape_string({s.D, 4 * s.U}) + " for 'x' of shape " +
                          shape_string(a.x.shape) + " and 'recurrent_kernel' of shape " +
                          shape_string(a.r.shape) + ", got " + shape_string(a.w.shape));
  if (s.L < 1)
    throw py::value_error(std::string(fn) + ": 'x' must have at least one time step, got "
                          "shape " + shape_string(a.x.shape));
  a.h0 = optional_state<T>(fn, "h0", h0_obj, s.N, s.U);
  a.c0 = optional_state<T>(fn, "c0", c0_obj, s.N, s.U);
  return a;
}

template <typename T>
const T* sequence_array(const char* fn, const char* name, py::handle obj, const LstmShape& s,
                        int64_t width) {
  auto a = array_arg<T>(obj, fn, name, 3);
  const std::vector<int64_t> want{s.N, s.L, width};
  if (a.shape != want)
    throw py::value_error(std::string(fn) + ": '" + name + "' must have shape " +
                          shape_string(want) + ", got " + shape_string(a.shape));
  return a.data;
}

template <Impl I>
py::object lstm_forward(py::handle x_obj, py::handle w_obj, py::handle r_obj, py::handle b_obj,
                        py::handle h0_obj, py::handle c0_obj) {
  const char* fn = "lstm_forward";
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const LstmArgs<T> a = lstm_args<T>(fn, x_obj, w_obj, r_obj, h0_obj, c0_obj);
    const LstmShape s = a.s;
    const T* b = nullptr;
    if (!b_obj.is_none()) {
      auto bv = array_arg<T>(b_obj, fn, "bias", 1);
      expect_dim(fn, "bias.shape[0] (4*units)", bv.dim(0), 4 * s.U);
      b = bv.data;
    }
    auto H = new_array<T>({s.N, s.L, s.U});
    auto C = new_array<T>({s.N, s.L, s.U});
    auto Z = new_array<T>({s.N, s.L, 4 * s.U});
    T *hp = H.mutable_data(), *cp = C.mutable_data(), *zp = Z.mutable_data();
    {
      py::gil_scoped_release nogil;
      table<T>(I).lstm_forward(hp, cp, zp, a.x.data, a.w.data, a.r.data, b, a.h0, a.c0, s);
    }
    return py::make_tuple(std::move(H), std::move(C), std::move(Z));
  });
}

template <Impl I>
py::object lstm_backward(py::handle dH_obj, py::handle dhL_obj, py::handle dcL_obj,
                         py::handle x_obj, py::handle w_obj, py::handle r_obj,
                         py::handle h0_obj, py::handle c0_obj, py::handle H_obj,
                         py::handle C_obj, py::handle Z_obj, py::handle dw_obj,
                         py::handle dr_obj, py::handle db_obj, bool need_dx, bool need_dstate,
                         bool accumulate) {
  const char* fn = "lstm_backward";
  return dispatch_float(float_type(x_obj, fn, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const LstmArgs<T> a = lstm_args<T>(fn, x_obj, w_obj, r_obj, h0_obj, c0_obj);
    const LstmShape s = a.s;
    const T* dH = dH_obj.is_none() ? nullptr : sequence_array<T>(fn, "dH", dH_obj, s, s.U);
    const T* dhL = optional_state<T>(fn, "dh_last", dhL_obj, s.N, s.U);
    const T* dcL = optional_state<T>(fn, "dc_last", dcL_obj, s.N, s.U);
    const T* H = sequence_array<T>(fn, "H", H_obj, s, s.U);
    const T* C = sequence_array<T>(fn, "C", C_obj, s, s.U);
    const T* Z = sequence_array<T>(fn, "Z", Z_obj, s, 4 * s.U);
    auto dw = array_arg<T>(dw_obj, fn, "dkernel", 2, true);
    auto dr = array_arg<T>(dr_obj, fn, "drecurrent_kernel", 2, true);
    if (dw.shape != a.w.shape)
      throw py::value_error(std::string(fn) + ": 'dkernel' must have the kernel's shape " +
                            shape_string(a.w.shape) + ", got " + shape_string(dw.shape));
    if (dr.shape != a.r.shape)
      throw py::value_error(std::string(fn) + ": 'drecurrent_kernel' must have the recurrent "
                            "kernel's shape " + shape_string(a.r.shape) + ", got " +
                            shape_string(dr.shape));
    T* db = nullptr;
    if (!db_obj.is_none()) {
      auto dbv = array_arg<T>(db_obj, fn, "dbias", 1, true);
      expect_dim(fn, "dbias.shape[0] (4*units)", dbv.dim(0), 4 * s.U);
      db = dbv.data;
    }
    py::object dx_out = py::none(), dh0_out = py::none(), dc0_out = py::none();
    T *dx = nullptr, *dh0 = nullptr, *dc0 = nullptr;
    if (need_dx) {
      auto arr = new_array<T>({s.N, s.L, s.D});
      dx = arr.mutable_data();
      dx_out = std::move(arr);
    }
    if (need_dstate) {
      auto h = new_array<T>({s.N, s.U});
      auto c = new_array<T>({s.N, s.U});
      dh0 = h.mutable_data();
      dc0 = c.mutable_data();
      dh0_out = std::move(h);
      dc0_out = std::move(c);
    }
    {
      py::gil_scoped_release nogil;
      table<T>(I).lstm_backward(dx, dw.data, dr.data, db, dh0, dc0, dH, dhL, dcL, a.x.data,
                                 a.w.data, a.r.data, a.h0, a.c0, H, C, Z, s, accumulate);
    }
    return py::make_tuple(dx_out, dh0_out, dc0_out);
  });
}

}  // namespace

template <Impl I>
void bind_lstm(py::module_& m) {
  m.def("lstm_forward", &lstm_forward<I>, py::arg("x"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"), py::arg("c0"),
        "Every step of an LSTM (Keras gate order i, f, c~, o): x (N, L, D), kernel (D, 4U), "
        "recurrent_kernel (U, 4U), bias (4U,) or None, h0 and c0 (N, U) or None (zeros) -> "
        "(H, C, Z): h_t and c_t of every step (N, L, U) and the activated gates (N, L, 4U).");
  m.def("lstm_backward", &lstm_backward<I>, py::arg("dH"), py::arg("dh_last"), py::arg("dc_last"),
        py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("h0"),
        py::arg("c0"), py::arg("H"), py::arg("C"), py::arg("Z"), py::arg("dkernel"),
        py::arg("drecurrent_kernel"), py::arg("dbias"), py::arg("need_dx") = true,
        py::arg("need_dstate") = false, py::arg("accumulate") = true,
        "Backward through time from dH (N, L, U) or None, dh_last and dc_last (N, U) or None, "
        "given the forward's H, C, Z. Adds (or writes, accumulate=False) the weight gradients "
        "into dkernel, drecurrent_kernel, dbias; returns (dx or None, dh0 or None, dc0 or "
        "None).");
}

template void bind_lstm<Impl::fast>(py::module_& m);
template void bind_lstm<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
