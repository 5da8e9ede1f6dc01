#include "bindings/array_check.h"

#include <sstream>

namespace dlfast {
namespace bind {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << (shape.size() == 1 ? ",)" : ")");
  return s.str();
}

std::string code_list(const char* const* names, int n) {
  std::ostringstream s;
  s << "0.." << n - 1 << " (";
  for (int i = 0; i < n; ++i) s << (i ? ", " : "") << names[i];
  s << ")";
  return s.str();
}

std::string describe(py::handle obj) {
  if (py::isinstance<py::array>(obj)) {
    py::array a = py::reinterpret_borrow<py::array>(obj);
    std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
    return std::string(py::str(a.dtype())) + " array of shape " + shape_string(shape);
  }
  return std::string(py::str(py::type::of(obj).attr("__name__")));
}

FloatType float_type(py::handle obj, const char* fn, const char* name) {
  if (py::isinstance<py::array>(obj)) {
    py::dtype dt = py::reinterpret_borrow<py::array>(obj).dtype();
    if (dt.equal(py::dtype::of<float>())) return FloatType::f32;
    if (dt.equal(py::dtype::of<double>())) return FloatType::f64;
  }
  throw py::type_error(std::string(fn) + ": argument '" + name +
                       "' must be a float32 or float64 numpy array, got " + describe(obj));
}

template <typename T>
Array<T> array_arg(py::handle obj, const char* fn, const char* name, int ndim, bool writable) {
  const char* want = sizeof(T) == 4 ? "float32" : "float64";
  if (!py::isinstance<py::array>(obj) ||
      !py::reinterpret_borrow<py::array>(obj).dtype().equal(py::dtype::of<T>()))
    throw py::type_error(std::string(fn) + ": argument '" + name + "' must be a " + want +
                         " numpy array (the dtype of the first array argument), got " +
                         describe(obj));
  py::array a = py::reinterpret_borrow<py::array>(obj);
  Array<T> out;
  out.shape.assign(a.shape(), a.shape() + a.ndim());
  out.size = a.size();
  if (ndim >= 0 && a.ndim() != ndim)
    throw py::value_error(std::string(fn) + ": argument '" + name + "' must be " +
                          std::to_string(ndim) + "-D, got shape " + shape_string(out.shape));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(fn) + ": argument '" + name +
                          "' must be C-contiguous, got a strided view of shape " +
                          shape_string(out.shape) + " (use numpy.ascontiguousarray)");
  if (writable && !a.writeable())
    throw py::value_error(std::string(fn) + ": argument '" + name +
                          "' is written to and must be writable, got a read-only array");
  out.data = static_cast<T*>(writable ? a.mutable_data() : const_cast<void*>(a.data()));
  return out;
}

template Array<float> array_arg<float>(py::handle, const char*, const char*, int, bool);
template Array<double> array_arg<double>(py::handle, const char*, const char*, int, bool);

void expect_dim(const char* fn, const std::string& what, int64_t actual, int64_t expected) {
  if (actual != expected)
    throw py::value_error(std::string(fn) + ": " + what + ": expected " +
                          std::to_string(expected) + ", got " + std::to_string(actual));
}

}  // namespace bind
}  // namespace dlfast
