// The CUDA kernels behind pybind11 (see device_array.h). Every op takes its outputs as
// preallocated device arrays (outputs first, as the kernels), checks every argument before
// anything is queued, and releases the GIL while it queues the launches. The Python wrappers
// (python/dlfast/cuda/ops.py) allocate the outputs and derive the convolution geometry.
#include <pybind11/stl.h>

#include "bindings/cuda/device_array.h"
#include "cuda/kernels.h"

namespace dlfast {
namespace bind_cuda {

DeviceArray& f32_arg(py::handle obj, const char* fn, const char* name, int ndim,
                     const std::vector<int64_t>& dims) {
  if (!py::isinstance<DeviceArray>(obj))
    throw py::type_error(std::string(fn) + ": argument '" + name + "' must be a dlfast.cuda.Array "
                         "(float32), got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
  DeviceArray& a = obj.cast<DeviceArray&>();
  if (a.dtype != DType::f32)
    throw py::type_error(std::string(fn) + ": argument '" + name + "' must be float32, got " +
                         describe_array(a));
  if (ndim >= 0 && int(a.shape.size()) != ndim)
    throw py::value_error(std::string(fn) + ": argument '" + name + "' must be " +
                          std::to_string(ndim) + "-D, got " + describe_array(a));
  for (size_t i = 0; i < dims.size() && i < a.shape.size(); ++i)
    if (dims[i] >= 0 && a.shape[i] != dims[i]) {
      std::vector<int64_t> want(a.shape);
      for (size_t j = 0; j < dims.size() && j < want.size(); ++j)
        if (dims[j] >= 0) want[j] = dims[j];
      throw py::value_error(std::string(fn) + ": argument '" + name + "' must have shape " +
                            shape_text(want) + ", got " + describe_array(a));
    }
  return a;
}

float* optional_f32(py::handle obj, const char* fn, const char* name,
                    const std::vector<int64_t>& dims) {
  if (obj.is_none()) return nullptr;
  return f32_arg(obj, fn, name, int(dims.size()), dims).f32();
}

const int64_t* labels_arg(py::handle obj, const char* fn, const char* name, int64_t n) {
  if (!py::isinstance<DeviceArray>(obj))
    throw py::type_error(std::string(fn) + ": argument '" + name + "' must be a dlfast.cuda.Array "
                         "of int64 labels");
  DeviceArray& a = obj.cast<DeviceArray&>();
  if (a.dtype != DType::i64 || a.shape.size() != 1 || a.shape[0] != n)
    throw py::value_error(std::string(fn) + ": argument '" + name + "' must be int64 labels of "
                          "shape (" + std::to_string(n) + ",), got " + describe_array(a));
  return static_cast<const int64_t*>(a.data);
}

namespace {

constexpr cudaStream_t kStream = 0;  // the legacy default stream (see __dlpack__)

Activation act_arg(int code, const char* fn, bool softmax_ok = true) {
  if (code < 0 || code > 4 || (!softmax_ok && code == 4))
    throw py::value_error(std::string(fn) + ": unknown activation code " + std::to_string(code));
  return Activation(code);
}

// Queue launches with the GIL released, then report a failed launch.
template <typename F>
void run(const char* fn, F&& launch) {
  {
    py::gil_scoped_release release;
    launch();
  }
  check_launch(fn);
}

// The rows x columns view of an activation array: columns = the last axis.
std::pair<int64_t, int64_t> rows_cols(const DeviceArray& a) {
  const int64_t C = a.shape.empty() ? 1 : a.shape.back();
  return {C ? a.size() / C : 0, C};
}

// (stride_h, stride_w, dil_h, dil_w, pad_top, pad_left), checked.
void geometry(const std::vector<int64_t>& g, const char* fn, int64_t* sh, int64_t* sw,
              int64_t* dh, int64_t* dw, int64_t* pt, int64_t* pl) {
  if (g.size() != 6 || g[0] < 1 || g[1] < 1 || g[2] < 1 || g[3] < 1 || g[4] < 0 || g[5] < 0)
    throw py::value_error(std::string(fn) + ": geometry must be (stride_h, stride_w, dil_h, "
                          "dil_w, pad_top, pad_left) with strides, dilations >= 1 and pads >= 0");
  *sh = g[0], *sw = g[1], *dh = g[2], *dw = g[3], *pt = g[4], *pl = g[5];
}

Conv2dShape conv_shape(const char* fn, const DeviceArray& x, const DeviceArray& w,
                       const std::vector<int64_t>& out_hw, const std::vector<int64_t>& g) {
  Conv2dShape s{};
  s.N = x.shape[0], s.H = x.shape[1], s.W = x.shape[2], s.C = x.shape[3];
  s.R = w.shape[0], s.S = w.shape[1], s.K = w.shape[3];
  if (w.shape[2] != s.C)
    throw py::value_error(std::string(fn) + ": kernel in-channels: expected " +
                          std::to_string(s.C) + " (x's channels), got " + std::to_string(w.shape[2]));
  geometry(g, fn, &s.stride_h, &s.stride_w, &s.dil_h, &s.dil_w, &s.pad_top, &s.pad_left);
  if (out_hw.size() != 2 || out_hw[0] < 1 || out_hw[1] < 1)
    throw py::value_error(std::string(fn) + ": output size must be two ints >= 1");
  s.P = out_hw[0], s.Q = out_hw[1];
  return s;
}

Pool2dShape pool_shape(const char* fn, const std::vector<int64_t>& in,
                       const std::vector<int64_t>& pool, const std::vector<int64_t>& out_hw,
                       const std::vector<int64_t>& g) {
  if (in.size() != 4) throw py::value_error(std::string(fn) + ": input must be (N, H, W, C)");
  if (pool.size() != 2 || pool[0] < 1 || pool[1] < 1 || out_hw.size() != 2 || out_hw[0] < 1 ||
      out_hw[1] < 1)
    throw py::value_error(std::string(fn) + ": pool size and output size must be two ints >= 1");
  Pool2dShape s{};
  s.N = in[0], s.H = in[1], s.W = in[2], s.C = in[3];
  s.R = pool[0], s.S = pool[1], s.P = out_hw[0], s.Q = out_hw[1];
  int64_t dh, dw;
  geometry(g, fn, &s.stride_h, &s.stride_w, &dh, &dw, &s.pad_top, &s.pad_left);
  return s;
}

void bind_dense_family(py::module_& m) {
  // A host-side switch: no GPU needed to set or read it.
  m.def("set_allow_tf32", [](bool allow) { cuda::set_allow_tf32(allow); }, py::arg("allow"),
        "Let every matrix product round its inputs to TF32 on tensor cores (sm_80 and newer).");
  m.def("allow_tf32", [] { return cuda::allow_tf32(); });
  m.def("tf32_active", [] { return cuda::gemm_use_tf32(); },
        "Whether products use TF32 now: allowed, and the GPU has TF32 tensor cores.");
  m.def("gemm", [](py::handle C_, py::handle A_, py::handle B_, py::handle bias_, bool ta,
                   bool tb, bool accumulate, int act_code) {
    const char* fn = "gemm";
    DeviceArray& A = f32_arg(A_, fn, "A", 2);
    DeviceArray& B = f32_arg(B_, fn, "B", 2);
    const int64_t M = ta ? A.shape[1] : A.shape[0], K = ta ? A.shape[0] : A.shape[1];
    const int64_t N = tb ? B.shape[0] : B.shape[1];
    f32_arg(B_, fn, "B", 2, tb ? std::vector<int64_t>{-1, K} : std::vector<int64_t>{K, -1});
    DeviceArray& C = f32_arg(C_, fn, "C", 2, {M, N});
    const float* bias = optional_f32(bias_, fn, "bias", {N});
    const Activation act = act_arg(act_code, fn, false);
    run(fn, [&] {
      cuda::gemm(C.f32(), A.f32(), B.f32(), bias, M, N, K, A.shape[1], B.shape[1], N, ta, tb,
                 accumulate, act, kStream);
    });
  }, py::arg("C"), py::arg("A"), py::arg("B"), py::arg("bias"), py::arg("trans_a"),
     py::arg("trans_b"), py::arg("accumulate"), py::arg("activation"),
     "C (= or +=) op(A) . op(B) (+ bias, activation), all float32 device arrays.");

  m.def("activation_forward", [](py::handle y_, py::handle x_, int code) {
    const char* fn = "activation_forward";
    DeviceArray& x = f32_arg(x_, fn, "x", -1);
    DeviceArray& y = f32_arg(y_, fn, "y", int(x.shape.size()), x.shape);
    const Activation act = act_arg(code, fn);
    const auto rc = rows_cols(x);
    run(fn, [&] { cuda::activation_forward(y.f32(), x.f32(), rc.first, rc.second, act, kStream); });
  }, py::arg("y"), py::arg("x"), py::arg("activation"));

  m.def("activation_backward", [](py::handle dx_, py::handle dy_, py::handle y_, int code) {
    const char* fn = "activation_backward";
    DeviceArray& dy = f32_arg(dy_, fn, "dy", -1);
    DeviceArray& y = f32_arg(y_, fn, "y", int(dy.shape.size()), dy.shape);
    DeviceArray& dx = f32_arg(dx_, fn, "dx", int(dy.shape.size()), dy.shape);
    const Activation act = act_arg(code, fn);
    const auto rc = rows_cols(dy);
    run(fn, [&] {
      cuda::activation_backward(dx.f32(), dy.f32(), y.f32(), rc.first, rc.second, act, kStream);
    });
  }, py::arg("dx"), py::arg("dy"), py::arg("y"), py::arg("activation"));

  m.def("add", [](py::handle out_, py::handle a_, py::handle b_) {
    const char* fn = "add";
    DeviceArray& a = f32_arg(a_, fn, "a", -1);
    DeviceArray& b = f32_arg(b_, fn, "b", int(a.shape.size()), a.shape);
    DeviceArray& out = f32_arg(out_, fn, "out", int(a.shape.size()), a.shape);
    run(fn, [&] { cuda::add(out.f32(), a.f32(), b.f32(), a.size(), kStream); });
  }, py::arg("out"), py::arg("a"), py::arg("b"), "out = a + b, all of one shape (out may be a "
     "or b).");

  m.def("column_sum", [](py::handle out_, py::handle x_, bool accumulate) {
    const char* fn = "column_sum";
    DeviceArray& x = f32_arg(x_, fn, "x", 2);
    DeviceArray& out = f32_arg(out_, fn, "out", 1, {x.shape[1]});
    run(fn, [&] {
      cuda::column_sum(out.f32(), x.f32(), x.shape[0], x.shape[1], accumulate, kStream);
    });
  }, py::arg("out"), py::arg("x"), py::arg("accumulate"));

  m.def("dense_forward", [](py::handle y_, py::handle x_, py::handle W_, py::handle b_, int code) {
    const char* fn = "dense_forward";
    DeviceArray& x = f32_arg(x_, fn, "x", 2);
    DeviceArray& W = f32_arg(W_, fn, "kernel", 2, {x.shape[1], -1});
    const int64_t N = x.shape[0], D = x.shape[1], U = W.shape[1];
    const float* b = optional_f32(b_, fn, "bias", {U});
    DeviceArray& y = f32_arg(y_, fn, "y", 2, {N, U});
    const Activation act = act_arg(code, fn);
    run(fn, [&] { cuda::dense_forward(y.f32(), x.f32(), W.f32(), b, N, D, U, act, kStream); });
  }, py::arg("y"), py::arg("x"), py::arg("kernel"), py::arg("bias"), py::arg("activation"));

  m.def("dense_backward", [](py::handle dx_, py::handle dW_, py::handle db_, py::handle dy_,
                             py::handle x_, py::handle W_, py::handle y_, int code,
                             bool accumulate) {
    const char* fn = "dense_backward";
    DeviceArray& x = f32_arg(x_, fn, "x", 2);
    DeviceArray& W = f32_arg(W_, fn, "kernel", 2, {x.shape[1], -1});
    const int64_t N = x.shape[0], D = x.shape[1], U = W.shape[1];
    DeviceArray& dy = f32_arg(dy_, fn, "dy", 2, {N, U});
    DeviceArray& dW = f32_arg(dW_, fn, "dkernel", 2, {D, U});
    float* db = optional_f32(db_, fn, "dbias", {U});
    float* dx = optional_f32(dx_, fn, "dx", {N, D});
    const Activation act = act_arg(code, fn);
    const float* y = optional_f32(y_, fn, "y", {N, U});
    if (act != Activation::linear && y == nullptr)
      throw py::value_error(std::string(fn) + ": argument 'y' (the forward output) is needed "
                            "for a non-linear activation");
    float* dz = act != Activation::linear ? workspace(N * U) : nullptr;
    run(fn, [&] {
      cuda::dense_backward(dx, dW.f32(), db, dz, dy.f32(), x.f32(), W.f32(), y, N, D, U, act,
                           accumulate, kStream);
    });
  }, py::arg("dx"), py::arg("dkernel"), py::arg("dbias"), py::arg("dy"), py::arg("x"),
     py::arg("kernel"), py::arg("y"), py::arg("activation"), py::arg("accumulate"));
}

void bind_loss_and_updates(py::module_& m) {
  m.def("loss", [](py::handle loss_, py::handle grad_, py::handle y_pred_, py::handle target_,
                   py::handle labels_, int kind, bool from_logits, double scale, bool accumulate) {
    const char* fn = "loss";
    if (kind < 0 || kind > 3) throw py::value_error("loss: unknown loss code " + std::to_string(kind));
    const Loss k = Loss(kind);
    DeviceArray& y = f32_arg(y_pred_, fn, "y_pred", 2);
    const int64_t N = y.shape[0], C = y.shape[1];
    const bool sparse = k == Loss::sparse_categorical_crossentropy;
    const int64_t* labels = sparse ? labels_arg(labels_, fn, "labels", N) : nullptr;
    const float* target = sparse ? nullptr : f32_arg(target_, fn, "target", 2, {N, C}).f32();
    float* grad = optional_f32(grad_, fn, "grad", {N, C});
    if (!py::isinstance<DeviceArray>(loss_) || loss_.cast<DeviceArray&>().dtype != DType::f64 ||
        loss_.cast<DeviceArray&>().size() != 1)
      throw py::type_error("loss: argument 'loss' must be a float64 device array of one element");
    double* out = static_cast<double*>(loss_.cast<DeviceArray&>().data);
    float* work = workspace(cuda::loss_workspace(N, C));
    run(fn, [&] {
      cuda::loss_forward_backward(grad, out, work, y.f32(), target, labels, N, C, k, from_logits,
                                  scale, accumulate, kStream);
    });
  }, py::arg("loss"), py::arg("grad"), py::arg("y_pred"), py::arg("target"), py::arg("labels"),
     py::arg("kind"), py::arg("from_logits"), py::arg("scale"), py::arg("accumulate"),
     "loss (= or +=) scale * mean loss (float64 scalar on the device); grad (=) its gradient.");

  m.def("count_correct", [](py::handle count_, py::handle y_pred_, py::handle target_,
                            py::handle labels_, double threshold) {
    const char* fn = "count_correct";
    DeviceArray& y = f32_arg(y_pred_, fn, "y_pred", 2);
    const int64_t N = y.shape[0], C = y.shape[1];
    const int64_t* labels = labels_.is_none() ? nullptr : labels_arg(labels_, fn, "labels", N);
    const float* target = labels ? nullptr : f32_arg(target_, fn, "target", 2, {N, C}).f32();
    if (!py::isinstance<DeviceArray>(count_) || count_.cast<DeviceArray&>().dtype != DType::i64 ||
        count_.cast<DeviceArray&>().size() != 1)
      throw py::type_error("count_correct: argument 'count' must be an int64 device array of one element");
    int64_t* count = static_cast<int64_t*>(count_.cast<DeviceArray&>().data);
    run(fn, [&] {
      cuda::count_correct(count, y.f32(), target, labels, N, C, float(threshold), kStream);
    });
  }, py::arg("count"), py::arg("y_pred"), py::arg("target"), py::arg("labels"),
     py::arg("threshold"));

  m.def("sgd_update", [](py::handle w_, py::handle v_, py::handle g_, double lr, double momentum,
                         bool nesterov, double wd) {
    const char* fn = "sgd_update";
    DeviceArray& w = f32_arg(w_, fn, "w", -1);
    DeviceArray& g = f32_arg(g_, fn, "g", int(w.shape.size()), w.shape);
    float* v = optional_f32(v_, fn, "v", w.shape);
    if (momentum != 0 && v == nullptr)
      throw py::value_error("sgd_update: momentum needs the velocity array 'v'");
    run(fn, [&] {
      cuda::sgd_update(w.f32(), v, g.f32(), w.size(), float(lr), float(momentum), nesterov,
                       float(wd), kStream);
    });
  }, py::arg("w"), py::arg("v"), py::arg("g"), py::arg("learning_rate"), py::arg("momentum"),
     py::arg("nesterov"), py::arg("weight_decay"));

  m.def("adam_update", [](py::handle w_, py::handle m_, py::handle v_, py::handle g_, double lr,
                          double b1, double b2, double eps, int64_t t, double wd) {
    const char* fn = "adam_update";
    DeviceArray& w = f32_arg(w_, fn, "w", -1);
    DeviceArray& g = f32_arg(g_, fn, "g", int(w.shape.size()), w.shape);
    DeviceArray& mm = f32_arg(m_, fn, "m", int(w.shape.size()), w.shape);
    DeviceArray& v = f32_arg(v_, fn, "v", int(w.shape.size()), w.shape);
    if (t < 1) throw py::value_error("adam_update: step t must be >= 1, got " + std::to_string(t));
    run(fn, [&] {
      cuda::adam_update(w.f32(), mm.f32(), v.f32(), g.f32(), w.size(), float(lr), float(b1),
                        float(b2), float(eps), t, float(wd), kStream);
    });
  }, py::arg("w"), py::arg("m"), py::arg("v"), py::arg("g"), py::arg("learning_rate"),
     py::arg("beta_1"), py::arg("beta_2"), py::arg("epsilon"), py::arg("t"),
     py::arg("weight_decay") = 0.0);
}

void bind_conv_pool(py::module_& m) {
  m.def("conv2d_forward", [](py::handle y_, py::handle x_, py::handle w_, py::handle b_,
                             std::vector<int64_t> out_hw, std::vector<int64_t> g, int code) {
    const char* fn = "conv2d_forward";
    DeviceArray& x = f32_arg(x_, fn, "x", 4);
    DeviceArray& w = f32_arg(w_, fn, "kernel", 4);
    const Conv2dShape s = conv_shape(fn, x, w, out_hw, g);
    const float* b = optional_f32(b_, fn, "bias", {s.K});
    DeviceArray& y = f32_arg(y_, fn, "y", 4, {s.N, s.P, s.Q, s.K});
    const Activation act = act_arg(code, fn);
    run(fn, [&] { cuda::conv2d_forward(y.f32(), x.f32(), w.f32(), b, s, act, kStream); });
  }, py::arg("y"), py::arg("x"), py::arg("kernel"), py::arg("bias"), py::arg("out_hw"),
     py::arg("geometry"), py::arg("activation"));

  m.def("conv2d_backward", [](py::handle dx_, py::handle dw_, py::handle db_, py::handle dy_,
                              py::handle x_, py::handle w_, py::handle y_,
                              std::vector<int64_t> g, int code, bool accumulate) {
    const char* fn = "conv2d_backward";
    DeviceArray& x = f32_arg(x_, fn, "x", 4);
    DeviceArray& w = f32_arg(w_, fn, "kernel", 4);
    DeviceArray& dy = f32_arg(dy_, fn, "dy", 4, {x.shape[0], -1, -1, w.shape[3]});
    const Conv2dShape s = conv_shape(fn, x, w, {dy.shape[1], dy.shape[2]}, g);
    DeviceArray& dw = f32_arg(dw_, fn, "dkernel", 4, w.shape);
    float* db = optional_f32(db_, fn, "dbias", {s.K});
    float* dx = optional_f32(dx_, fn, "dx", x.shape);
    const Activation act = act_arg(code, fn);
    const float* y = optional_f32(y_, fn, "y", dy.shape);
    if (act != Activation::linear && y == nullptr)
      throw py::value_error(std::string(fn) + ": argument 'y' (the forward output) is needed "
                            "for a non-linear activation");
    float* dz = act != Activation::linear ? workspace(dy.size()) : nullptr;
    run(fn, [&] {
      cuda::conv2d_backward(dx, dw.f32(), db, dz, dy.f32(), x.f32(), w.f32(), y, s, act,
                            accumulate, kStream);
    });
  }, py::arg("dx"), py::arg("dkernel"), py::arg("dbias"), py::arg("dy"), py::arg("x"),
     py::arg("kernel"), py::arg("y"), py::arg("geometry"), py::arg("activation"),
     py::arg("accumulate"));

  // Pools: pool = (R, S); geometry as convolution's with dilations 1.
  m.def("pool2d_forward", [](py::handle y_, py::handle x_, std::vector<int64_t> pool,
                             std::vector<int64_t> g, bool is_max) {
    const char* fn = is_max ? "maxpool2d_forward" : "avgpool2d_forward";
    DeviceArray& x = f32_arg(x_, fn, "x", 4);
    DeviceArray& y = f32_arg(y_, fn, "y", 4, {x.shape[0], -1, -1, x.shape[3]});
    const Pool2dShape s = pool_shape(fn, x.shape, pool, {y.shape[1], y.shape[2]}, g);
    run(fn, [&] {
      if (is_max) cuda::maxpool2d_forward(y.f32(), x.f32(), s, kStream);
      else cuda::avgpool2d_forward(y.f32(), x.f32(), s, kStream);
    });
  }, py::arg("y"), py::arg("x"), py::arg("pool"), py::arg("geometry"), py::arg("is_max"));

  m.def("pool2d_backward", [](py::handle dx_, py::handle dy_, py::handle x_,
                              std::vector<int64_t> pool, std::vector<int64_t> g, bool is_max) {
    const char* fn = is_max ? "maxpool2d_backward" : "avgpool2d_backward";
    DeviceArray& dx = f32_arg(dx_, fn, "dx", 4);
    DeviceArray& dy = f32_arg(dy_, fn, "dy", 4, {dx.shape[0], -1, -1, dx.shape[3]});
    const float* x = is_max ? f32_arg(x_, fn, "x", 4, dx.shape).f32() : nullptr;
    const Pool2dShape s = pool_shape(fn, dx.shape, pool, {dy.shape[1], dy.shape[2]}, g);
    run(fn, [&] {
      if (is_max) cuda::maxpool2d_backward(dx.f32(), dy.f32(), x, s, kStream);
      else cuda::avgpool2d_backward(dx.f32(), dy.f32(), s, kStream);
    });
  }, py::arg("dx"), py::arg("dy"), py::arg("x"), py::arg("pool"), py::arg("geometry"),
     py::arg("is_max"));
}

void bind_lstm(py::module_& m) {
  // dst[R, C] = src rows at offset + r * ld (e.g. the last step of an LSTM's H[N, L, U]).
  m.def("copy_strided", [](py::handle dst_, py::handle src_, int64_t offset, int64_t ld) {
    const char* fn = "copy_strided";
    DeviceArray& dst = f32_arg(dst_, fn, "dst", 2);
    DeviceArray& src = f32_arg(src_, fn, "src", -1);
    const int64_t R = dst.shape[0], C = dst.shape[1];
    if (offset < 0 || ld < C || (R > 0 && offset + (R - 1) * ld + C > src.size()))
      throw py::value_error(std::string(fn) + ": rows of " + std::to_string(C) + " at offset " +
                            std::to_string(offset) + " every " + std::to_string(ld) +
                            " do not fit in " + describe_array(src));
    if (R * C == 0) return;
    run(fn, [&] {
      cudaMemcpy2DAsync(dst.f32(), sizeof(float) * C, src.f32() + offset, sizeof(float) * ld,
                        sizeof(float) * C, R, cudaMemcpyDeviceToDevice, kStream);
    });
  }, py::arg("dst"), py::arg("src"), py::arg("offset"), py::arg("ld"));

  m.def("lstm_forward", [](py::handle H_, py::handle C_, py::handle Z_, py::handle x_,
                           py::handle W_, py::handle R_, py::handle b_, py::handle h0_,
                           py::handle c0_) {
    const char* fn = "lstm_forward";
    DeviceArray& x = f32_arg(x_, fn, "x", 3);
    DeviceArray& R = f32_arg(R_, fn, "recurrent_kernel", 2);
    const LstmShape s{x.shape[0], x.shape[1], x.shape[2], R.shape[0]};
    const int64_t G = 4 * s.U;
    f32_arg(R_, fn, "recurrent_kernel", 2, {s.U, G});
    DeviceArray& W = f32_arg(W_, fn, "kernel", 2, {s.D, G});
    const float* b = optional_f32(b_, fn, "bias", {G});
    const float* h0 = optional_f32(h0_, fn, "h0", {s.N, s.U});
    const float* c0 = optional_f32(c0_, fn, "c0", {s.N, s.U});
    DeviceArray& H = f32_arg(H_, fn, "H", 3, {s.N, s.L, s.U});
    DeviceArray& C = f32_arg(C_, fn, "C", 3, {s.N, s.L, s.U});
    DeviceArray& Z = f32_arg(Z_, fn, "Z", 3, {s.N, s.L, G});
    run(fn, [&] {
      cuda::lstm_forward(H.f32(), C.f32(), Z.f32(), x.f32(), W.f32(), R.f32(), b, h0, c0, s,
                         kStream);
    });
  }, py::arg("H"), py::arg("C"), py::arg("Z"), py::arg("x"), py::arg("kernel"),
     py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"), py::arg("c0"));

  m.def("lstm_backward", [](py::handle dx_, py::handle dW_, py::handle dR_, py::handle db_,
                            py::handle dh0_, py::handle dc0_, py::handle dH_, py::handle dhL_,
                            py::handle dcL_, py::handle x_, py::handle W_, py::handle R_,
                            py::handle h0_, py::handle c0_, py::handle H_, py::handle C_,
                            py::handle Z_, bool accumulate) {
    const char* fn = "lstm_backward";
    DeviceArray& x = f32_arg(x_, fn, "x", 3);
    DeviceArray& R = f32_arg(R_, fn, "recurrent_kernel", 2);
    const LstmShape s{x.shape[0], x.shape[1], x.shape[2], R.shape[0]};
    const int64_t G = 4 * s.U;
    const std::vector<int64_t> nu{s.N, s.U}, nlu{s.N, s.L, s.U};
    f32_arg(R_, fn, "recurrent_kernel", 2, {s.U, G});
    DeviceArray& W = f32_arg(W_, fn, "kernel", 2, {s.D, G});
    DeviceArray& H = f32_arg(H_, fn, "H", 3, nlu);
    DeviceArray& C = f32_arg(C_, fn, "C", 3, nlu);
    DeviceArray& Z = f32_arg(Z_, fn, "Z", 3, {s.N, s.L, G});
    const float* h0 = optional_f32(h0_, fn, "h0", nu);
    const float* c0 = optional_f32(c0_, fn, "c0", nu);
    const float* dH = optional_f32(dH_, fn, "dH", nlu);
    const float* dhL = optional_f32(dhL_, fn, "dh_last", nu);
    const float* dcL = optional_f32(dcL_, fn, "dc_last", nu);
    DeviceArray& dW = f32_arg(dW_, fn, "dkernel", 2, {s.D, G});
    DeviceArray& dR = f32_arg(dR_, fn, "drecurrent_kernel", 2, {s.U, G});
    float* db = optional_f32(db_, fn, "dbias", {G});
    float* dx = optional_f32(dx_, fn, "dx", x.shape);
    float* dh0 = optional_f32(dh0_, fn, "dh0", nu);
    float* dc0 = optional_f32(dc0_, fn, "dc0", nu);
    float* work = workspace(cuda::lstm_backward_workspace(s));
    run(fn, [&] {
      cuda::lstm_backward(dx, dW.f32(), dR.f32(), db, dh0, dc0, dH, dhL, dcL, x.f32(), W.f32(),
                          R.f32(), h0, c0, H.f32(), C.f32(), Z.f32(), s, accumulate, work,
                          kStream);
    });
  }, py::arg("dx"), py::arg("dkernel"), py::arg("drecurrent_kernel"), py::arg("dbias"),
     py::arg("dh0"), py::arg("dc0"), py::arg("dH"), py::arg("dh_last"), py::arg("dc_last"),
     py::arg("x"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("h0"), py::arg("c0"),
     py::arg("H"), py::arg("C"), py::arg("Z"), py::arg("accumulate"));
}

}  // namespace

void bind_ops(py::module_& m) {
  bind_dense_family(m);
  bind_loss_and_updates(m);
  bind_conv_pool(m);
  bind_lstm(m);
}

}  // namespace bind_cuda
}  // namespace dlfast
