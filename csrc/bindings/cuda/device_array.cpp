// Device arrays and DLPack for dlfast._cuda (see device_array.h).
//
// DLPack (https://dmlc.github.io/dlpack/latest/): an exporter hands out a PyCapsule named
// "dltensor" holding a DLManagedTensor; the consumer renames the capsule "used_dltensor" and
// calls the tensor's deleter when done with it. A capsule dropped unconsumed deletes it
// itself. The structs below are the ABI of dlpack.h (the unversioned DLManagedTensor, which
// every DLPack consumer accepts), written out here so that no header is needed.
#include "bindings/cuda/device_array.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <sstream>

extern "C" {
struct DLDevice {
  int32_t device_type;  // kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // kDLInt = 0, kDLUInt = 1, kDLFloat = 2
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; null means compact row-major
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};
}

namespace dlfast {
namespace bind_cuda {
namespace {

constexpr int32_t kDLCPU = 1, kDLCUDA = 2, kDLCUDAManaged = 13;

const char* dtype_name(DType t) {
  return t == DType::f32 ? "float32" : t == DType::f64 ? "float64" : "int64";
}

DType dtype_from_name(const std::string& name) {
  if (name == "float32") return DType::f32;
  if (name == "float64") return DType::f64;
  if (name == "int64") return DType::i64;
  throw py::type_error("dlfast.cuda: dtype must be float32, float64 or int64, got " + name);
}

DLDataType dl_dtype(DType t) {
  if (t == DType::i64) return DLDataType{0, 64, 1};
  return DLDataType{2, uint8_t(t == DType::f32 ? 32 : 64), 1};
}

std::vector<int64_t> shape_arg(py::handle obj, const char* fn) {
  std::vector<int64_t> shape;
  if (py::isinstance<py::int_>(obj)) {
    shape.push_back(obj.cast<int64_t>());
  } else {
    for (py::handle d : obj.cast<py::sequence>()) shape.push_back(d.cast<int64_t>());
  }
  for (int64_t d : shape)
    if (d < 0)
      throw py::value_error(std::string(fn) + ": sizes must be >= 0, got " + shape_text(shape));
  return shape;
}

// What an exported capsule owns: a reference to the storage and the shape it points at.
struct ExportContext {
  std::shared_ptr<Storage> keep;
  std::vector<int64_t> shape;
  DLManagedTensor tensor;
};

void export_deleter(DLManagedTensor* self) {
  delete static_cast<ExportContext*>(self->manager_ctx);
}

void capsule_destructor(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, "used_dltensor")) return;  // the consumer owns it now
  auto* t = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
  if (t == nullptr) {
    PyErr_Clear();
    return;
  }
  if (t->deleter) t->deleter(t);
}

// The producer side of the stream handshake: our work runs on the legacy default stream; a
// consumer that will read on another stream waits for it (DLPack's stream argument: None or
// 1 legacy default, 2 per-thread default, -1 no synchronisation, else a cudaStream_t).
void sync_for_consumer(py::handle stream) {
  if (stream.is_none()) return;
  const int64_t s = stream.cast<int64_t>();
  if (s == 0)
    throw py::value_error("__dlpack__: stream 0 is ambiguous for CUDA (DLPack); pass None or 1 "
                          "for the legacy default stream");
  if (s == 1 || s == -1) return;
  cudaStream_t consumer = s == 2 ? cudaStreamPerThread : reinterpret_cast<cudaStream_t>(s);
  cudaEvent_t ev;
  check_cuda(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "__dlpack__");
  check_cuda(cudaEventRecord(ev, 0), "__dlpack__");
  check_cuda(cudaStreamWaitEvent(consumer, ev, 0), "__dlpack__");
  cudaEventDestroy(ev);
}

py::object to_dlpack(const DeviceArray& a, py::handle stream) {
  sync_for_consumer(stream);
  auto* ctx = new ExportContext{a.storage, a.shape, {}};
  DLTensor& t = ctx->tensor.dl_tensor;
  t.data = a.data;
  t.device = DLDevice{kDLCUDA, a.device};
  t.ndim = int32_t(a.shape.size());
  t.dtype = dl_dtype(a.dtype);
  t.shape = ctx->shape.data();
  t.strides = nullptr;
  t.byte_offset = 0;
  ctx->tensor.manager_ctx = ctx;
  ctx->tensor.deleter = export_deleter;
  PyObject* capsule = PyCapsule_New(&ctx->tensor, "dltensor", capsule_destructor);
  if (capsule == nullptr) {
    delete ctx;
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(capsule);
}

DeviceArray from_dlpack(py::object obj) {
  const char* fn = "dlfast.cuda.from_dlpack";
  if (!py::hasattr(obj, "__dlpack__"))
    throw py::type_error(std::string(fn) + ": expected an object with __dlpack__ (a CuPy array, "
                         "a PyTorch CUDA tensor, ...), got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
  if (py::hasattr(obj, "__dlpack_device__")) {
    auto dev = obj.attr("__dlpack_device__")().cast<std::pair<int, int>>();
    if (dev.first != kDLCUDA && dev.first != kDLCUDAManaged)
      throw py::type_error(std::string(fn) + ": expected an array in CUDA memory, got one on " +
                           (dev.first == kDLCPU ? std::string("the CPU (use dlfast.cuda.from_numpy)")
                                                : "DLPack device type " + std::to_string(dev.first)));
  }
  py::object capsule = obj.attr("__dlpack__")(py::arg("stream") = 1);
  if (!PyCapsule_IsValid(capsule.ptr(), "dltensor"))
    throw py::type_error(std::string(fn) + ": __dlpack__ did not return an unused DLPack capsule");
  auto* mt = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  const DLTensor& t = mt->dl_tensor;
  if (t.device.device_type != kDLCUDA && t.device.device_type != kDLCUDAManaged)
    throw py::type_error(std::string(fn) + ": expected CUDA memory, got DLPack device type " +
                         std::to_string(t.device.device_type));
  int current = 0;
  check_cuda(cudaGetDevice(&current), fn);
  if (t.device.device_id != current)
    throw py::value_error(std::string(fn) + ": the array is on cuda:" +
                          std::to_string(t.device.device_id) + ", dlfast works on cuda:" +
                          std::to_string(current));
  DType dtype;
  if (t.dtype.lanes == 1 && t.dtype.code == 2 && t.dtype.bits == 32) dtype = DType::f32;
  else if (t.dtype.lanes == 1 && t.dtype.code == 2 && t.dtype.bits == 64) dtype = DType::f64;
  else if (t.dtype.lanes == 1 && t.dtype.code == 0 && t.dtype.bits == 64) dtype = DType::i64;
  else
    throw py::type_error(std::string(fn) + ": expected float32, float64 or int64 data, got "
                         "DLPack type code " + std::to_string(t.dtype.code) + " with " +
                         std::to_string(t.dtype.bits) + " bits");
  std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
  if (t.strides) {  // must be compact row-major (sizes-1 axes may carry any stride)
    int64_t expected = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && t.strides[i] != expected)
        throw py::value_error(std::string(fn) + ": expected a C-contiguous array (make it "
                              "contiguous first), got strides that are not row-major");
      expected *= shape[i];
    }
  }
  DeviceArray a;
  a.storage = std::make_shared<Storage>();
  a.storage->imported = mt;
  a.storage->ptr = static_cast<char*>(t.data) + t.byte_offset;
  a.data = a.storage->ptr;
  a.shape = shape;
  a.dtype = dtype;
  a.device = current;
  a.storage->nbytes = a.nbytes();
  PyCapsule_SetName(capsule.ptr(), "used_dltensor");  // ours now: the Storage calls the deleter
  return a;
}

DeviceArray from_numpy(py::array arr) {
  const char* fn = "dlfast.cuda.from_numpy";
  const std::string kind = py::str(arr.dtype());
  DType dtype = dtype_from_name(kind);
  if (!(arr.flags() & py::array::c_style))
    arr = py::array::ensure(arr, py::array::c_style);
  std::vector<int64_t> shape(arr.shape(), arr.shape() + arr.ndim());
  DeviceArray a = device_empty(shape, dtype);
  check_cuda(cudaMemcpy(a.data, arr.data(), a.nbytes(), cudaMemcpyHostToDevice), fn);
  return a;
}

py::array to_numpy(const DeviceArray& a) {
  py::array out(py::dtype(dtype_name(a.dtype)),
                std::vector<py::ssize_t>(a.shape.begin(), a.shape.end()));
  {
    py::gil_scoped_release release;
    check_cuda(cudaMemcpy(out.mutable_data(), a.data, a.nbytes(), cudaMemcpyDeviceToHost),
               "Array.to_numpy");
  }
  return out;
}

// Copy host data into an existing array of the same shape and dtype (no allocation).
void upload(DeviceArray& a, py::array arr) {
  const char* fn = "Array.upload";
  if (std::string(py::str(arr.dtype())) != dtype_name(a.dtype))
    throw py::type_error(std::string(fn) + ": expected a " + dtype_name(a.dtype) +
                         " array, got " + std::string(py::str(arr.dtype())));
  std::vector<int64_t> shape(arr.shape(), arr.shape() + arr.ndim());
  if (shape != a.shape)
    throw py::value_error(std::string(fn) + ": expected shape " + shape_text(a.shape) + ", got " +
                          shape_text(shape));
  arr = py::array::ensure(arr, py::array::c_style);
  check_cuda(cudaMemcpy(a.data, arr.data(), a.nbytes(), cudaMemcpyHostToDevice), fn);
}

// The device count and, when it is zero, why.
std::pair<int, std::string> cuda_status() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear it: this is an answer, not a failure
    std::string why = cudaGetErrorString(err);
    if (err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice)
      why += " (no usable NVIDIA GPU or driver on this machine)";
    return {0, why};
  }
  if (count == 0) return {0, "no CUDA device found"};
  return {count, ""};
}

}  // namespace

Storage::~Storage() {
  if (imported) {
    if (imported->deleter) imported->deleter(imported);
  } else if (ptr) {
    cudaFree(ptr);  // errors (a context already torn down at exit) have nowhere to go
  }
}

int64_t DeviceArray::size() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t DeviceArray::itemsize() const { return dtype == DType::f32 ? 4 : 8; }

DeviceArray device_empty(const std::vector<int64_t>& shape, DType dtype) {
  DeviceArray a;
  a.shape = shape;
  a.dtype = dtype;
  check_cuda(cudaGetDevice(&a.device), "dlfast.cuda");
  a.storage = std::make_shared<Storage>();
  a.storage->nbytes = a.nbytes();
  if (a.storage->nbytes) {
    const cudaError_t err = cudaMalloc(&a.storage->ptr, a.storage->nbytes);
    if (err != cudaSuccess) {
      cudaGetLastError();
      PyErr_SetString(PyExc_MemoryError, ("dlfast.cuda: cannot allocate " +
                                          std::to_string(a.storage->nbytes) + " bytes on cuda:" +
                                          std::to_string(a.device) + ": " +
                                          cudaGetErrorString(err)).c_str());
      throw py::error_already_set();
    }
  }
  a.data = a.storage->ptr;
  return a;
}

void check_cuda(cudaError_t err, const std::string& fn) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(fn + ": CUDA error: " + cudaGetErrorString(err));
  }
}

void check_launch(const std::string& fn) { check_cuda(cudaGetLastError(), fn); }

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) s << ",";
  s << ")";
  return s.str();
}

std::string describe_array(const DeviceArray& a) {
  return std::string(dtype_name(a.dtype)) + " array of shape " + shape_text(a.shape) +
         " on cuda:" + std::to_string(a.device);
}

float* workspace(int64_t n) {
  static std::unique_ptr<Storage> buffer;
  const size_t bytes = size_t(n > 0 ? n : 1) * sizeof(float);
  if (!buffer || buffer->nbytes < bytes) {
    buffer.reset();  // cudaFree waits for the work that still uses it
    auto fresh = std::make_unique<Storage>();
    check_cuda(cudaMalloc(&fresh->ptr, bytes), "dlfast.cuda workspace");
    fresh->nbytes = bytes;
    buffer = std::move(fresh);
  }
  return static_cast<float*>(buffer->ptr);
}

void bind_device_array(py::module_& m) {
  m.def("status", [] {
    auto s = cuda_status();
    return py::make_tuple(s.first, s.second);
  }, "(device count, reason when it is 0).");
  m.def("synchronize", [] {
    py::gil_scoped_release release;
    check_cuda(cudaDeviceSynchronize(), "dlfast.cuda.synchronize");
  }, "Wait for every queued kernel to finish.");

  py::class_<DeviceArray>(m, "Array", "An array in GPU memory: shape, dtype (float32, float64 "
                          "or int64), C-contiguous; passes to CuPy/PyTorch by DLPack.")
      .def_property_readonly("shape", [](const DeviceArray& a) {
        py::tuple t(a.shape.size());
        for (size_t i = 0; i < a.shape.size(); ++i) t[i] = a.shape[i];
        return t;
      })
      .def_property_readonly("dtype", [](const DeviceArray& a) { return py::dtype(dtype_name(a.dtype)); })
      .def_property_readonly("ndim", [](const DeviceArray& a) { return a.shape.size(); })
      .def_property_readonly("size", &DeviceArray::size)
      .def_property_readonly("nbytes", &DeviceArray::nbytes)
      .def_property_readonly("device", [](const DeviceArray& a) { return "cuda:" + std::to_string(a.device); })
      .def_property_readonly("data_ptr", [](const DeviceArray& a) { return reinterpret_cast<uintptr_t>(a.data); })
      .def("__len__", [](const DeviceArray& a) {
        if (a.shape.empty()) throw py::type_error("len() of a 0-d dlfast.cuda.Array");
        return a.shape[0];
      })
      .def("__repr__", [](const DeviceArray& a) { return "<dlfast.cuda.Array " + describe_array(a) + ">"; })
      .def("to_numpy", &to_numpy, "A host copy (waits for the queued work).")
      .def("upload", &upload, py::arg("array"),
           "Copy a host array of the same shape and dtype into this one.")
      .def("reshape", [](const DeviceArray& a, py::args args) {
        py::handle spec = args.size() == 1 ? args[0] : args;
        std::vector<int64_t> shape = shape_arg(spec, "Array.reshape");
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        if (n != a.size())
          throw py::value_error("Array.reshape: cannot view " + describe_array(a) + " as shape " +
                                shape_text(shape));
        DeviceArray v = a;
        v.shape = shape;
        return v;
      }, "A view with another shape of the same size (shares the memory).")
      .def("rows", [](const DeviceArray& a, int64_t lo, int64_t hi) {
        if (a.shape.empty() || lo < 0 || hi < lo || hi > a.shape[0])
          throw py::value_error("Array.rows: expected 0 <= lo <= hi <= " +
                                std::to_string(a.shape.empty() ? 0 : a.shape[0]) + ", got " +
                                std::to_string(lo) + ", " + std::to_string(hi));
        DeviceArray v = a;
        v.shape[0] = hi - lo;
        v.data = static_cast<char*>(a.data) + size_t(lo) * (a.nbytes() / size_t(a.shape[0] ? a.shape[0] : 1));
        return v;
      }, py::arg("lo"), py::arg("hi"), "A view of rows [lo, hi) along the first axis.")
      .def("fill_zero", [](DeviceArray& a) {
        check_cuda(cudaMemsetAsync(a.data, 0, a.nbytes(), 0), "Array.fill_zero");
      })
      .def("copy_", [](DeviceArray& a, const DeviceArray& src) {
        if (src.shape != a.shape || src.dtype != a.dtype)
          throw py::value_error("Array.copy_: expected a " + std::string(dtype_name(a.dtype)) +
                                " array of shape " + shape_text(a.shape) + ", got " +
                                describe_array(src));
        check_cuda(cudaMemcpyAsync(a.data, src.data, a.nbytes(), cudaMemcpyDeviceToDevice, 0),
                   "Array.copy_");
      }, py::arg("src"), "Copy another device array of the same shape into this one.")
      .def("__dlpack__", [](const DeviceArray& a, py::object stream, py::object, py::object,
                            py::object copy) {
        if (!copy.is_none() && copy.cast<bool>())
          throw py::value_error("__dlpack__: copy=True is not supported; the array is shared");
        return to_dlpack(a, stream);
      }, py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
         py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const DeviceArray& a) { return py::make_tuple(kDLCUDA, a.device); });

  m.def("empty", [](py::handle shape, const std::string& dtype) {
    return device_empty(shape_arg(shape, "dlfast.cuda.empty"), dtype_from_name(dtype));
  }, py::arg("shape"), py::arg("dtype") = "float32");
  m.def("zeros", [](py::handle shape, const std::string& dtype) {
    DeviceArray a = device_empty(shape_arg(shape, "dlfast.cuda.zeros"), dtype_from_name(dtype));
    check_cuda(cudaMemsetAsync(a.data, 0, a.nbytes(), 0), "dlfast.cuda.zeros");
    return a;
  }, py::arg("shape"), py::arg("dtype") = "float32");
  m.def("from_numpy", &from_numpy, py::arg("array"));
  m.def("from_dlpack", &from_dlpack, py::arg("obj"));
}

}  // namespace bind_cuda
}  // namespace dlfast
