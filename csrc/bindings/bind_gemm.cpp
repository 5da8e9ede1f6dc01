// dlfast._core.gemm / reference_gemm: C = op(a) . op(b) (+ bias, ReLU), new or into `out`.
#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {
namespace {

template <typename T>
bool overlaps(const Array<T>& x, const Array<T>& y) {
  return x.size > 0 && y.size > 0 && x.data < y.data + y.size && y.data < x.data + x.size;
}

py::object gemm_binding(const char* fn, py::handle a_obj, py::handle b_obj, bool trans_a,
                        bool trans_b, py::handle bias_obj, bool relu, py::handle out_obj,
                        bool accumulate, Impl impl) {
  return dispatch_float(float_type(a_obj, fn, "a"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto a = array_arg<T>(a_obj, fn, "a", 2);
    auto b = array_arg<T>(b_obj, fn, "b", 2);
    const int64_t M = trans_a ? a.dim(1) : a.dim(0), K = trans_a ? a.dim(0) : a.dim(1);
    const int64_t Kb = trans_b ? b.dim(1) : b.dim(0), N = trans_b ? b.dim(0) : b.dim(1);
    if (K != Kb)
      throw py::value_error(std::string(fn) + ": inner dimensions differ: op(a) has shape (" +
                            std::to_string(M) + ", " + std::to_string(K) + ") and op(b) (" +
                            std::to_string(Kb) + ", " + std::to_string(N) +
                            "); expected op(b).shape[0] == " + std::to_string(K));
    const T* bias = nullptr;
    if (!bias_obj.is_none()) {
      auto bv = array_arg<T>(bias_obj, fn, "bias", 1);
      expect_dim(fn, "bias.shape[0] (columns of the product)", bv.dim(0), N);
      bias = bv.data;
    }
    py::array_t<T> out_new;
    py::object result;
    Array<T> c;
    if (out_obj.is_none()) {
      if (accumulate)
        throw py::value_error(std::string(fn) + ": accumulate=True needs an 'out' array");
      out_new = new_array<T>({M, N});
      result = out_new;
      c = array_arg<T>(out_new, fn, "out", 2, true);
    } else {
      c = array_arg<T>(out_obj, fn, "out", 2, true);
      if (c.dim(0) != M || c.dim(1) != N)
        throw py::value_error(std::string(fn) + ": argument 'out' must have shape " +
                              shape_string({M, N}) + ", got " + shape_string(c.shape));
      if (overlaps(c, a) || overlaps(c, b))
        throw py::value_error(std::string(fn) + ": 'out' must not share memory with 'a' or 'b'");
      result = py::reinterpret_borrow<py::object>(out_obj);
    }
    {
      py::gil_scoped_release nogil;
      table<T>(impl).gemm(c.data, a.data, b.data, bias, M, N, K, a.dim(1), b.dim(1), N, trans_a,
                          trans_b, accumulate, relu);
    }
    return result;
  });
}

}  // namespace

template <Impl I>
void bind_gemm(py::module_& m) {
  const char* doc =
      "C = op(a) @ op(b) (+ bias per row, then ReLU when relu=True), written into a new array or "
      "into `out` (accumulated into it when accumulate=True). op(x) is x.T when trans_x.";
  m.def(
      "gemm",
      [](py::handle a, py::handle b, bool ta, bool tb, py::handle bias, bool relu, py::handle out,
         bool acc) { return gemm_binding("gemm", a, b, ta, tb, bias, relu, out, acc, I); },
      py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false,
      py::arg("bias") = py::none(), py::arg("relu") = false, py::arg("out") = py::none(),
      py::arg("accumulate") = false, doc);
  if (I == Impl::ref) return;
  // The reference's first name, kept beside dlfast._core.ref.gemm.
  m.def(
      "reference_gemm",
      [](py::handle a, py::handle b, bool ta, bool tb, py::handle bias, bool relu, py::handle out,
         bool acc) {
        return gemm_binding("reference_gemm", a, b, ta, tb, bias, relu, out, acc, Impl::ref);
      },
      py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false,
      py::arg("bias") = py::none(), py::arg("relu") = false, py::arg("out") = py::none(),
      py::arg("accumulate") = false, "The scalar reference (csrc/ref) of gemm, for tests.");
}

template void bind_gemm<Impl::fast>(py::module_& m);
template void bind_gemm<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
