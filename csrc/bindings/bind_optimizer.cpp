// dlfast._core.sgd_update: one call updates every parameter of a model.
#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {
namespace {

void sgd_update(py::list weights, py::list grads, py::object velocities, double lr,
                double momentum, bool nesterov, double weight_decay) {
  const char* fn = "sgd_update";
  const size_t n = weights.size();
  if (grads.size() != n)
    throw py::value_error("sgd_update: got " + std::to_string(n) + " weights but " +
                          std::to_string(grads.size()) + " grads");
  const bool use_v = momentum != 0.0;
  py::list vel;
  if (use_v) {
    if (velocities.is_none())
      throw py::value_error("sgd_update: momentum != 0 needs a list of velocities");
    vel = velocities.cast<py::list>();
    if (vel.size() != n)
      throw py::value_error("sgd_update: got " + std::to_string(n) + " weights but " +
                            std::to_string(vel.size()) + " velocities");
  }
  for (size_t i = 0; i < n; ++i) {
    const std::string wn = "weights[" + std::to_string(i) + "]";
    const std::string gn = "grads[" + std::to_string(i) + "]";
    const std::string vn = "velocities[" + std::to_string(i) + "]";
    dispatch_float(float_type(weights[i], fn, wn.c_str()), [&](auto tag) -> py::object {
      using T = decltype(tag);
      auto w = array_arg<T>(weights[i], fn, wn.c_str(), -1, true);
      auto g = array_arg<T>(grads[i], fn, gn.c_str(), -1);
      if (g.shape != w.shape)
        throw py::value_error("sgd_update: " + gn + " has shape " + shape_string(g.shape) +
                              ", expected the weight's " + shape_string(w.shape));
      T* v = nullptr;
      if (use_v) {
        auto va = array_arg<T>(vel[i], fn, vn.c_str(), -1, true);
        if (va.shape != w.shape)
          throw py::value_error("sgd_update: " + vn + " has shape " + shape_string(va.shape) +
                                ", expected the weight's " + shape_string(w.shape));
        v = va.data;
      }
      py::gil_scoped_release nogil;
      kernels<T>().sgd_update(w.data, v, g.data, w.size, T(lr), T(momentum), nesterov,
                              T(weight_decay));
      return py::none();
    });
  }
}

}  // namespace

void bind_optimizer(py::module_& m) {
  m.def("sgd_update", &sgd_update, py::arg("weights"), py::arg("grads"), py::arg("velocities"),
        py::arg("learning_rate"), py::arg("momentum"), py::arg("nesterov"),
        py::arg("weight_decay"),
        "Keras SGD over parallel lists of arrays, in place (velocities used when momentum != 0).");
}

}  // namespace bind
}  // namespace dlfast
