// dlfast._core optimizer updates: one call updates every parameter of a model (parallel lists
// of weights, gradients and the optimizer's state arrays).
#include "bindings/array_check.h"
#include "common/dispatch.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace dlfast {
namespace bind {
namespace {

// One parameter array and its companions, all of its dtype and shape: the weight (written),
// the gradient (read) and up to three state arrays (written; null when not asked).
struct ParamArrays {
  FloatType type;
  int64_t size;
  void* w;
  const void* g;
  void* state[3];
};

// A list argument `name`, of `n` entries (ValueError "fn: got n weights but k name" otherwise).
py::list parallel_list(const char* fn, py::handle obj, const char* name, size_t n) {
  if (!py::isinstance<py::list>(obj))
    throw py::type_error(std::string(fn) + ": " + name + " must be a list of arrays, got " +
                         describe(obj));
  py::list list = py::reinterpret_borrow<py::list>(obj);
  if (list.size() != n)
    throw py::value_error(std::string(fn) + ": got " + std::to_string(n) + " weights but " +
                          std::to_string(list.size()) + " " + name);
  return list;
}

// Checks parallel lists (weights, grads and the named state lists) entry by entry and returns
// the pointers; raises before anything is written, so a bad entry changes no weight.
std::vector<ParamArrays> check_params(
    const char* fn, py::list weights, py::handle grads_obj,
    const std::vector<std::pair<const char*, py::handle>>& state_lists) {
  const size_t n = weights.size();
  py::list grads = parallel_list(fn, grads_obj, "grads", n);
  std::vector<py::list> states;
  for (const auto& s : state_lists) states.push_back(parallel_list(fn, s.second, s.first, n));
  std::vector<ParamArrays> out(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string idx = "[" + std::to_string(i) + "]";
    const std::string wn = "weights" + idx, gn = "grads" + idx;
    const FloatType type = float_type(weights[i], fn, wn.c_str());
    dispatch_float(type, [&](auto tag) -> py::object {
      using T = decltype(tag);
      auto w = array_arg<T>(weights[i], fn, wn.c_str(), -1, true);
      auto same_shape = [&](const std::vector<int64_t>& shape, const std::string& what) {
        if (shape != w.shape)
          throw py::value_error(std::string(fn) + ": " + what + " has shape " +
                                shape_string(shape) + ", expected the weight's " +
                                shape_string(w.shape));
      };
      auto g = array_arg<T>(grads[i], fn, gn.c_str(), -1);
      same_shape(g.shape, gn);
      ParamArrays p{type, w.size, w.data, g.data, {nullptr, nullptr, nullptr}};
      for (size_t k = 0; k < states.size(); ++k) {
        const std::string sn = state_lists[k].first + idx;
        auto s = array_arg<T>(states[k][i], fn, sn.c_str(), -1, true);
        same_shape(s.shape, sn);
        // A state array that is also the weight, the gradient or another state would be
        // read after it was overwritten: a silent wrong answer.
        bool shared = s.data == w.data || s.data == g.data;
        for (size_t j = 0; j < k; ++j) shared = shared || static_cast<void*>(s.data) == p.state[j];
        if (s.size && shared)
          throw py::value_error(std::string(fn) + ": " + sn + " shares its memory with " +
                                "another array of parameter " + std::to_string(i) +
                                "; each state array must be its own");
        p.state[k] = s.data;
      }
      out[i] = p;
      return py::none();
    });
  }
  return out;
}

// Calls f(T{}, p) for every parameter, without the GIL.
template <typename F>
void for_each_param(const std::vector<ParamArrays>& params, F&& f) {
  py::gil_scoped_release nogil;
  for (const ParamArrays& p : params) {
    if (p.type == FloatType::f32)
      f(float{}, p);
    else
      f(double{}, p);
  }
}

template <typename T>
T* ptr(void* p) {
  return static_cast<T*>(p);
}
template <typename T>
const T* cptr(const void* p) {
  return static_cast<const T*>(p);
}

// ValueError unless `value` is finite and inside `range` ("[0, 1)": 0 <= value < 1, "[0, 1]",
// or ">= 0").
void check_hyper(const char* fn, const char* name, double value, const char* range) {
  const std::string r = range;
  const bool ok = std::isfinite(value) && value >= 0 &&
                  (r == ">= 0" || (r == "[0, 1]" ? value <= 1 : value < 1));
  if (!ok)
    throw py::value_error(std::string(fn) + ": " + name + " must be a finite number " +
                          (r == ">= 0" ? r : "in " + r) + ", got " +
                          std::string(py::str(py::float_(value))));
}

void check_step(const char* fn, int64_t step) {
  if (step < 1)
    throw py::value_error(std::string(fn) + ": step (the update's 1-based count) must be >= 1, "
                          "got " + std::to_string(step));
}

template <Impl I>
void sgd_update(py::list weights, py::handle grads, py::handle velocities, double lr,
                double momentum, bool nesterov, double weight_decay) {
  const bool use_v = momentum != 0.0;
  if (use_v && velocities.is_none())
    throw py::value_error("sgd_update: momentum != 0 needs a list of velocities");
  std::vector<std::pair<const char*, py::handle>> states;
  if (use_v) states.emplace_back("velocities", velocities);
  const auto params = check_params("sgd_update", weights, grads, states);
  for_each_param(params, [&](auto tag, const ParamArrays& p) {
    using T = decltype(tag);
    table<T>(I).sgd_update(ptr<T>(p.w), ptr<T>(p.state[0]), cptr<T>(p.g), p.size, T(lr),
                            T(momentum), nesterov, T(weight_decay));
  });
}

// The arguments Adam and Adamax share (Adamax's beta_2 may be 1: its u = max(u, |g|) then).
void check_moment_args(const char* fn, double lr, double beta_1, double beta_2,
                       const char* beta_2_range, double epsilon, double weight_decay,
                       int64_t step) {
  check_hyper(fn, "learning_rate", lr, ">= 0");
  check_hyper(fn, "beta_1", beta_1, "[0, 1)");
  check_hyper(fn, "beta_2", beta_2, beta_2_range);
  check_hyper(fn, "epsilon", epsilon, ">= 0");
  check_hyper(fn, "weight_decay", weight_decay, ">= 0");
  check_step(fn, step);
}

template <Impl I>
void adam_update(py::list weights, py::handle grads, py::handle momentums,
                 py::handle velocities, double lr, double beta_1, double beta_2, double epsilon,
                 double weight_decay, int64_t step) {
  const char* fn = "adam_update";
  check_moment_args(fn, lr, beta_1, beta_2, "[0, 1)", epsilon, weight_decay, step);
  const auto params =
      check_params(fn, weights, grads, {{"momentums", momentums}, {"velocities", velocities}});
  for_each_param(params, [&](auto tag, const ParamArrays& p) {
    using T = decltype(tag);
    table<T>(I).adam_update(ptr<T>(p.w), ptr<T>(p.state[0]), ptr<T>(p.state[1]), cptr<T>(p.g),
                             p.size, lr, beta_1, beta_2, epsilon, weight_decay, step);
  });
}

template <Impl I>
void adamax_update(py::list weights, py::handle grads, py::handle momentums, py::handle norms,
                   double lr, double beta_1, double beta_2, double epsilon, double weight_decay,
                   int64_t step) {
  const char* fn = "adamax_update";
  check_moment_args(fn, lr, beta_1, beta_2, "[0, 1]", epsilon, weight_decay, step);
  const auto params =
      check_params(fn, weights, grads, {{"momentums", momentums}, {"norms", norms}});
  for_each_param(params, [&](auto tag, const ParamArrays& p) {
    using T = decltype(tag);
    table<T>(I).adamax_update(ptr<T>(p.w), ptr<T>(p.state[0]), ptr<T>(p.state[1]),
                               cptr<T>(p.g), p.size, lr, beta_1, beta_2, epsilon, weight_decay,
                               step);
  });
}

template <Impl I>
void adadelta_update(py::list weights, py::handle grads, py::handle accumulated_grads,
                     py::handle accumulated_delta_vars, double lr, double rho, double epsilon,
                     double weight_decay) {
  const char* fn = "adadelta_update";
  check_hyper(fn, "learning_rate", lr, ">= 0");
  check_hyper(fn, "rho", rho, "[0, 1]");
  check_hyper(fn, "epsilon", epsilon, ">= 0");
  check_hyper(fn, "weight_decay", weight_decay, ">= 0");
  const auto params = check_params(fn, weights, grads,
                                   {{"accumulated_grads", accumulated_grads},
                                    {"accumulated_delta_vars", accumulated_delta_vars}});
  for_each_param(params, [&](auto tag, const ParamArrays& p) {
    using T = decltype(tag);
    table<T>(I).adadelta_update(ptr<T>(p.w), ptr<T>(p.state[0]), ptr<T>(p.state[1]),
                                 cptr<T>(p.g), p.size, lr, rho, epsilon, weight_decay);
  });
}

template <Impl I>
void sgdg2_probe(py::list weights, py::handle grads, py::handle saved, double h) {
  const char* fn = "sgdg2_probe";
  check_hyper(fn, "step_size", h, ">= 0");
  const auto params = check_params(fn, weights, grads, {{"saved", saved}});
  for_each_param(params, [&](auto tag, const ParamArrays& p) {
    using T = decltype(tag);
    table<T>(I).sgdg2_probe(ptr<T>(p.w), ptr<T>(p.state[0]), cptr<T>(p.g), p.size, h);
  });
}

// (<g - p, g>, |g - p|^2) over every parameter: `saved` holds g, `grads` the probe's p.
// The saved arrays play the weights' part in the checks (they are not written).
template <Impl I>
py::tuple sgdg2_dots(py::list saved, py::handle grads) {
  const auto params = check_params("sgdg2_dots", saved, grads, {});
  double dot[2] = {0.0, 0.0};
  for_each_param(params, [&](auto tag, const ParamArrays& p) {
    using T = decltype(tag);
    table<T>(I).sgdg2_dots(dot, cptr<T>(p.w), cptr<T>(p.g), p.size);
  });
  return py::make_tuple(dot[0], dot[1]);
}

// The step's second half: `saved` plays the gradients' part (read only).
template <Impl I>
void sgdg2_step(py::list weights, py::handle saved, double h_probe, double h_new,
                double weight_decay) {
  const char* fn = "sgdg2_step";
  check_hyper(fn, "h_probe", h_probe, ">= 0");
  check_hyper(fn, "h_new", h_new, ">= 0");
  check_hyper(fn, "weight_decay", weight_decay, ">= 0");
  const auto params = check_params(fn, weights, saved, {});
  for_each_param(params, [&](auto tag, const ParamArrays& p) {
    using T = decltype(tag);
    table<T>(I).sgdg2_step(ptr<T>(p.w), cptr<T>(p.g), p.size, h_probe, h_new, weight_decay);
  });
}

template <Impl I>
void rmsprop_update(py::list weights, py::handle grads, py::handle velocities,
                    py::handle momentums, py::handle average_gradients, double lr, double rho,
                    double momentum, double epsilon, bool centered, double weight_decay) {
  const char* fn = "rmsprop_update";
  check_hyper(fn, "learning_rate", lr, ">= 0");
  check_hyper(fn, "rho", rho, "[0, 1]");
  check_hyper(fn, "momentum", momentum, "[0, 1]");
  check_hyper(fn, "epsilon", epsilon, ">= 0");
  check_hyper(fn, "weight_decay", weight_decay, ">= 0");
  const bool use_m = momentum != 0.0;
  if (use_m && momentums.is_none())
    throw py::value_error("rmsprop_update: momentum != 0 needs a list of momentums");
  if (centered && average_gradients.is_none())
    throw py::value_error("rmsprop_update: centered=True needs a list of average_gradients");
  // The state lists in the order the kernel takes them; the unused ones are not checked.
  std::vector<std::pair<const char*, py::handle>> states{{"velocities", velocities}};
  if (use_m) states.emplace_back("momentums", momentums);
  if (centered) states.emplace_back("average_gradients", average_gradients);
  const auto params = check_params(fn, weights, grads, states);
  for_each_param(params, [&](auto tag, const ParamArrays& p) {
    using T = decltype(tag);
    T* m = use_m ? ptr<T>(p.state[1]) : nullptr;
    T* a = centered ? ptr<T>(p.state[use_m ? 2 : 1]) : nullptr;
    table<T>(I).rmsprop_update(ptr<T>(p.w), ptr<T>(p.state[0]), m, a, cptr<T>(p.g), p.size,
                                lr, rho, momentum, epsilon, centered, weight_decay);
  });
}

template <Impl I>
void nadam_update(py::list weights, py::handle grads, py::handle momentums,
                  py::handle velocities, double lr, double beta_1, double beta_2,
                  double epsilon, double weight_decay, int64_t step, double u_product) {
  const char* fn = "nadam_update";
  check_moment_args(fn, lr, beta_1, beta_2, "[0, 1)", epsilon, weight_decay, step);
  check_hyper(fn, "u_product", u_product, "[0, 1)");
  const auto params =
      check_params(fn, weights, grads, {{"momentums", momentums}, {"velocities", velocities}});
  for_each_param(params, [&](auto tag, const ParamArrays& p) {
    using T = decltype(tag);
    table<T>(I).nadam_update(ptr<T>(p.w), ptr<T>(p.state[0]), ptr<T>(p.state[1]),
                              cptr<T>(p.g), p.size, lr, beta_1, beta_2, epsilon, weight_decay,
                              step, u_product);
  });
}

}  // namespace

template <Impl I>
void bind_optimizer(py::module_& m) {
  m.def("sgd_update", &sgd_update<I>, py::arg("weights"), py::arg("grads"), py::arg("velocities"),
        py::arg("learning_rate"), py::arg("momentum"), py::arg("nesterov"),
        py::arg("weight_decay"),
        "Keras SGD over parallel lists of arrays, in place (velocities used when momentum != 0).");
  m.def("adam_update", &adam_update<I>, py::arg("weights"), py::arg("grads"), py::arg("momentums"),
        py::arg("velocities"), py::arg("learning_rate"), py::arg("beta_1"), py::arg("beta_2"),
        py::arg("epsilon"), py::arg("weight_decay"), py::arg("step"),
        "Keras Adam (amsgrad=False) over parallel lists of arrays, in place; step is 1-based.");
  m.def("adamax_update", &adamax_update<I>, py::arg("weights"), py::arg("grads"),
        py::arg("momentums"), py::arg("norms"), py::arg("learning_rate"), py::arg("beta_1"),
        py::arg("beta_2"), py::arg("epsilon"), py::arg("weight_decay"), py::arg("step"),
        "Keras Adamax over parallel lists of arrays, in place; step is 1-based.");
  m.def("adadelta_update", &adadelta_update<I>, py::arg("weights"), py::arg("grads"),
        py::arg("accumulated_grads"), py::arg("accumulated_delta_vars"),
        py::arg("learning_rate"), py::arg("rho"), py::arg("epsilon"), py::arg("weight_decay"),
        "Keras Adadelta over parallel lists of arrays, in place.");
  m.def("sgdg2_probe", &sgdg2_probe<I>, py::arg("weights"), py::arg("grads"), py::arg("saved"),
        py::arg("step_size"), "SGD-G2 probe: saved = g; w -= h*g, over parallel lists.");
  m.def("sgdg2_dots", &sgdg2_dots<I>, py::arg("saved"), py::arg("grads"),
        "SGD-G2: (<g - p, g>, |g - p|^2) in double, g the saved gradients, p the probe's.");
  m.def("sgdg2_step", &sgdg2_step<I>, py::arg("weights"), py::arg("saved"), py::arg("h_probe"),
        py::arg("h_new"), py::arg("weight_decay"),
        "SGD-G2 step from the probe point: w = (w + h_probe*g)(1 - h_new*wd) - h_new*g.");
  m.def("rmsprop_update", &rmsprop_update<I>, py::arg("weights"), py::arg("grads"),
        py::arg("velocities"), py::arg("momentums"), py::arg("average_gradients"),
        py::arg("learning_rate"), py::arg("rho"), py::arg("momentum"), py::arg("epsilon"),
        py::arg("centered"), py::arg("weight_decay"),
        "Keras RMSprop over parallel lists of arrays, in place (momentums used when "
        "momentum != 0, average_gradients when centered; None otherwise).");
  m.def("nadam_update", &nadam_update<I>, py::arg("weights"), py::arg("grads"),
        py::arg("momentums"), py::arg("velocities"), py::arg("learning_rate"),
        py::arg("beta_1"), py::arg("beta_2"), py::arg("epsilon"), py::arg("weight_decay"),
        py::arg("step"), py::arg("u_product"),
        "Keras Nadam over parallel lists of arrays, in place; step is 1-based, u_product the "
        "momentum-cache product u_1...u_step.");
}

template void bind_optimizer<Impl::fast>(py::module_& m);
template void bind_optimizer<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
