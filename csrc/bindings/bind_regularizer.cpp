// dlfast._core.regularizer_penalty: Keras's L1/L2 penalty of a weight and, in the same pass,
// its gradient added into the weight's gradient (see csrc/cpu/regularizer.cpp).
#include <cmath>
#include <string>

#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {
namespace {

void check_coefficient(const char* fn, const char* name, double v) {
  if (!(v >= 0.0) || !std::isfinite(v))
    throw py::value_error(std::string(fn) + ": '" + name + "' must be a finite number >= 0, "
                          "got " + std::to_string(v));
}

template <Impl I>
double regularizer_penalty(py::handle w_obj, double l1, double l2, py::handle grad_obj) {
  const char* fn = "regularizer_penalty";
  check_coefficient(fn, "l1", l1);
  check_coefficient(fn, "l2", l2);
  double penalty = 0.0;
  dispatch_float(float_type(w_obj, fn, "weight"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto w = array_arg<T>(w_obj, fn, "weight", -1);
    T* grad = nullptr;
    if (!grad_obj.is_none()) {
      auto g = array_arg<T>(grad_obj, fn, "grad", -1, true);
      if (g.shape != w.shape)
        throw py::value_error(std::string(fn) + ": 'grad' must have the weight's shape " +
                              shape_string(w.shape) + ", got " + shape_string(g.shape));
      grad = g.data;
    }
    {
      py::gil_scoped_release nogil;
      penalty = table<T>(I).regularizer_penalty(grad, w.data, w.size, l1, l2);
    }
    return py::none();
  });
  return penalty;
}

}  // namespace

template <Impl I>
void bind_regularizer(py::module_& m) {
  m.def("regularizer_penalty", &regularizer_penalty<I>, py::arg("weight"), py::arg("l1"),
        py::arg("l2"), py::arg("grad") = py::none(),
        "Returns l1*sum|w| + l2*sum(w**2); when grad is given, also adds the penalty's "
        "gradient l1*sign(w) + 2*l2*w into it, in the same pass.");
}

template void bind_regularizer<Impl::fast>(py::module_& m);
template void bind_regularizer<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
