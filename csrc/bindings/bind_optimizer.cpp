// dlfast._core.sgd_update: one call updates every parameter of a model.
#include "bindings/array_check.h"
#include "common/dispatch.h"

#include <vector>

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
  // Check every argument before writing anything: a bad entry changes no weight.
  struct Job {
    FloatType type;
    void* w;
    void* v;
    const void* g;
    int64_t size;
  };
  std::vector<Job> jobs(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string wn = "weights[" + std::to_string(i) + "]";
    const std::string gn = "grads[" + std::to_string(i) + "]";
    const std::string vn = "velocities[" + std::to_string(i) + "]";
    const FloatType type = float_type(weights[i], fn, wn.c_str());
    dispatch_float(type, [&](auto tag) -> py::object {
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
      jobs[i] = Job{type, w.data, v, g.data, w.size};
      return py::none();
    });
  }
  py::gil_scoped_release nogil;
  for (const Job& j : jobs) {
    if (j.type == FloatType::f32)
      kernels<float>().sgd_update(static_cast<float*>(j.w), static_cast<float*>(j.v),
                                  static_cast<const float*>(j.g), j.size, float(lr),
                                  float(momentum), nesterov, float(weight_decay));
    else
      kernels<double>().sgd_update(static_cast<double*>(j.w), static_cast<double*>(j.v),
                                   static_cast<const double*>(j.g), j.size, lr, momentum,
                                   nesterov, weight_decay);
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
