// dlfast._core.loss: the loss value and (optionally) its gradient in one call.
#include "bindings/array_check.h"
#include "common/dispatch.h"

#include <cmath>
#include <string>

namespace dlfast {
namespace bind {
namespace {

template <Impl I>
py::tuple loss_binding(int kind, py::handle true_obj, py::handle pred_obj, bool from_logits,
                       bool want_grad, double delta) {
  const char* fn = "loss";
  if (kind < 0 || kind >= kLossCount)
    throw py::value_error("loss: kind must be " + code_list(kLossNames, kLossCount) +
                          ", got " + std::to_string(kind));
  const Loss loss = Loss(kind);
  if (loss == Loss::huber && !(std::isfinite(delta) && delta > 0))
    throw py::value_error("loss: Huber's delta must be a finite number > 0, got " +
                          std::string(py::str(py::float_(delta))));
  if (from_logits && kind >= int(Loss::mae))
    throw py::value_error("loss: from_logits=True has no meaning for the mean absolute error, "
                          "Huber or KL divergence (kind " + std::to_string(kind) + ")");
  py::object out = dispatch_float(float_type(pred_obj, fn, "y_pred"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto pred = array_arg<T>(pred_obj, fn, "y_pred", -1);
    if (pred.shape.empty())
      throw py::value_error("loss: 'y_pred' must have a batch axis, got a 0-D array");
    int64_t N = pred.dim(0), C = N > 0 ? pred.size / N : 0;
    if (loss == Loss::kl_divergence && pred.shape.size() > 1) {  // rows of the last axis
      C = pred.shape.back();
      N = C > 0 ? pred.size / C : 0;
    }
    const T* target = nullptr;
    const int64_t* labels = nullptr;
    if (loss == Loss::sparse_categorical_crossentropy) {
      if (!py::isinstance<py::array_t<int64_t>>(true_obj) ||
          !py::reinterpret_borrow<py::array>(true_obj).dtype().equal(py::dtype::of<int64_t>()))
        throw py::type_error("loss: sparse 'y_true' must be an int64 array of class indices, got " +
                             describe(true_obj));
      py::array lab = py::reinterpret_borrow<py::array>(true_obj);
      if (!(lab.flags() & py::array::c_style) || lab.size() != N)
        throw py::value_error("loss: sparse 'y_true' must be a contiguous array of " +
                              std::to_string(N) + " class indices, got " + describe(true_obj));
      labels = static_cast<const int64_t*>(lab.data());
      for (int64_t i = 0; i < N; ++i)
        if (labels[i] < 0 || labels[i] >= C)
          throw py::value_error("loss: sparse 'y_true' holds class " + std::to_string(labels[i]) +
                                " at index " + std::to_string(i) + ", expected 0 <= class < " +
                                std::to_string(C));
    } else {
      auto t = array_arg<T>(true_obj, fn, "y_true", -1);
      if (t.shape != pred.shape)
        throw py::value_error("loss: 'y_true' must have the shape of 'y_pred' " +
                              shape_string(pred.shape) + ", got " + shape_string(t.shape));
      target = t.data;
    }
    py::object grad = py::none();
    T* g = nullptr;
    if (want_grad) {
      auto ga = new_array<T>(pred.shape);
      g = ga.mutable_data();
      grad = std::move(ga);
    }
    double value;
    {
      py::gil_scoped_release nogil;
      value = table<T>(I).loss_forward_backward(g, pred.data, target, labels, N, C, loss,
                                                 from_logits, delta);
    }
    return py::make_tuple(value, grad);
  });
  return py::reinterpret_steal<py::tuple>(out.release());
}

}  // namespace

template <Impl I>
void bind_loss(py::module_& m) {
  m.def("loss", &loss_binding<I>, py::arg("kind"), py::arg("y_true"), py::arg("y_pred"),
        py::arg("from_logits") = false, py::arg("want_grad") = true, py::arg("delta") = 1.0,
        "(mean loss, d loss / d y_pred or None); kind 0..6 = mse, binary, categorical, sparse "
        "categorical cross-entropy, mean absolute error, Huber (threshold delta), KL "
        "divergence.");
}

template void bind_loss<Impl::fast>(py::module_& m);
template void bind_loss<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
