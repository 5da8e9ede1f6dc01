// Floor 2 of the optional GPU module dlfast._cuda: device arrays (device memory + shape +
// dtype) that speak DLPack, and the checks every op binding makes on them. Only this module
// links the CUDA runtime (statically), so dlfast._core never needs a driver.
#pragma once
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace py = pybind11;

struct DLManagedTensor;

namespace dlfast {
namespace bind_cuda {

enum class DType { f32, f64, i64 };

// Device memory owned by one or more arrays: cudaMalloc'd here, or borrowed from another
// library through DLPack (then handed back through its deleter).
struct Storage {
  void* ptr = nullptr;
  size_t nbytes = 0;
  DLManagedTensor* imported = nullptr;
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();
};

struct DeviceArray {
  std::shared_ptr<Storage> storage;
  void* data = nullptr;  // first element (inside storage)
  std::vector<int64_t> shape;
  DType dtype = DType::f32;
  int device = 0;

  int64_t size() const;
  size_t itemsize() const;
  size_t nbytes() const { return size_t(size()) * itemsize(); }
  float* f32() const { return static_cast<float*>(data); }
};

// A new uninitialised array on the current device (MemoryError when cudaMalloc fails).
DeviceArray device_empty(const std::vector<int64_t>& shape, DType dtype);

// RuntimeError "fn: <CUDA error>" when err (or the last launch) failed.
void check_cuda(cudaError_t err, const std::string& fn);
void check_launch(const std::string& fn);

// "float32 array of shape (2, 3) on cuda:0"
std::string describe_array(const DeviceArray& a);
std::string shape_text(const std::vector<int64_t>& shape);

// Argument `name` of `fn` as a float32 device array of rank `ndim` (any when < 0), with the
// given sizes where they are >= 0. TypeError/ValueError naming the argument otherwise.
DeviceArray& f32_arg(py::handle obj, const char* fn, const char* name, int ndim,
                     const std::vector<int64_t>& dims = {});
// The same for an optional argument: nullptr when obj is None.
float* optional_f32(py::handle obj, const char* fn, const char* name,
                    const std::vector<int64_t>& dims);
// Sparse class labels: an int64 device vector of length n.
const int64_t* labels_arg(py::handle obj, const char* fn, const char* name, int64_t n);

// A device workspace of at least n floats, grown on demand and reused by every op (all ops
// run in order on one stream, so one buffer serves them all).
float* workspace(int64_t n);

void bind_device_array(py::module_& m);
void bind_ops(py::module_& m);

}  // namespace bind_cuda
}  // namespace dlfast
