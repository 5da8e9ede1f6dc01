// dlfast._core.embedding_forward / embedding_backward (see csrc/cpu/embedding.cpp). The ids
// are an integer array of any shape and integer dtype; every id is checked to lie in
// [0, input_dim) before any kernel runs.
#include <string>

#include "bindings/array_check.h"
#include "common/dispatch.h"

namespace dlfast {
namespace bind {
namespace {

// The ids as a C-contiguous int64 array (a cast copy unless they are one already), each in
// [0, V): TypeError for a non-integer array, ValueError naming the first id out of range.
py::array_t<int64_t> ids_arg(py::handle obj, const char* fn, int64_t V) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(fn) + ": argument 'ids' must be an integer numpy array, "
                         "got " + describe(obj));
  const char kind = py::reinterpret_borrow<py::array>(obj).dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error(std::string(fn) + ": argument 'ids' must be an integer numpy array "
                         "(token indices), got " + describe(obj));
  auto ids = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!ids) throw py::error_already_set();
  const int64_t* p = ids.data();
  for (int64_t i = 0, n = ids.size(); i < n; ++i)
    if (p[i] < 0 || p[i] >= V)
      throw py::value_error(std::string(fn) + ": 'ids' must be in [0, input_dim) = [0, " +
                            std::to_string(V) + "), got " + std::to_string(p[i]) +
                            " at flat index " + std::to_string(i));
  return ids;
}

std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

template <Impl I>
py::object embedding_forward(py::handle ids_obj, py::handle w_obj) {
  const char* fn = "embedding_forward";
  return dispatch_float(float_type(w_obj, fn, "embeddings"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto w = array_arg<T>(w_obj, fn, "embeddings", 2);
    const int64_t V = w.dim(0), E = w.dim(1);
    auto ids = ids_arg(ids_obj, fn, V);
    std::vector<int64_t> shape = shape_of(ids);
    shape.push_back(E);
    auto y = new_array<T>(shape);
    T* yp = y.mutable_data();
    const int64_t* ip = ids.data();
    const int64_t n = ids.size();
    {
      py::gil_scoped_release nogil;
      table<T>(I).embedding_forward(yp, ip, w.data, n, V, E);
    }
    return std::move(y);
  });
}

template <Impl I>
void embedding_backward(py::handle dy_obj, py::handle ids_obj, py::handle dw_obj,
                        bool accumulate) {
  const char* fn = "embedding_backward";
  dispatch_float(float_type(dy_obj, fn, "dy"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    auto dw = array_arg<T>(dw_obj, fn, "dembeddings", 2, true);
    const int64_t V = dw.dim(0), E = dw.dim(1);
    auto ids = ids_arg(ids_obj, fn, V);
    auto dy = array_arg<T>(dy_obj, fn, "dy", -1);
    std::vector<int64_t> want = shape_of(ids);
    want.push_back(E);
    if (dy.shape != want)
      throw py::value_error(std::string(fn) + ": 'dy' must have shape ids.shape + "
                            "(output_dim,) = " + shape_string(want) + ", got " +
                            shape_string(dy.shape));
    const int64_t* ip = ids.data();
    const int64_t n = ids.size();
    {
      py::gil_scoped_release nogil;
      table<T>(I).embedding_backward(dw.data, dy.data, ip, n, V, E, accumulate);
    }
    return py::none();
  });
}

}  // namespace

template <Impl I>
void bind_embedding(py::module_& m) {
  m.def("embedding_forward", &embedding_forward<I>, py::arg("ids"), py::arg("embeddings"),
        "Rows of embeddings (input_dim, output_dim) picked by the integer ids (any shape, "
        "each in [0, input_dim)): returns an array of shape ids.shape + (output_dim,).");
  m.def("embedding_backward", &embedding_backward<I>, py::arg("dy"), py::arg("ids"),
        py::arg("dembeddings"), py::arg("accumulate") = true,
        "Scatter-adds the rows of dy (ids.shape + (output_dim,)) into dembeddings by id "
        "(accumulate=False: writes, rows no id names become 0). Deterministic.");
}

template void bind_embedding<Impl::fast>(py::module_& m);
template void bind_embedding<Impl::ref>(py::module_& m);

}  // namespace bind
}  // namespace dlfast
