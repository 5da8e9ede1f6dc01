// The reference kernels as one KernelTable (the layout of common/dispatch.h), which the
// bindings serve as dlfast._core.ref. Filled entry by entry by name, so the order of the
// struct does not matter; the size check below fails the build when KernelTable gains an
// entry that is not filled here (add the new op's reference, then bump the count).
#include "ref/ref.h"

namespace dlfast {
namespace ref {
namespace {

constexpr size_t kEntries = 32;
static_assert(sizeof(KernelTable<float>) == kEntries * sizeof(void (*)()),
              "KernelTable has a new entry: write its reference in csrc/ref and fill it below");

template <typename T>
KernelTable<T> make_table() {
  KernelTable<T> t{};
  t.gemm = &gemm<T>;
  t.dense_forward = &dense_forward<T>;
  t.dense_backward = &dense_backward<T>;
  t.activation_forward = &activation_forward<T>;
  t.activation_backward = &activation_backward<T>;
  t.loss_forward_backward = &loss_forward_backward<T>;
  t.sgd_update = &sgd_update<T>;
  t.adam_update = &adam_update<T>;
  t.adamax_update = &adamax_update<T>;
  t.adadelta_update = &adadelta_update<T>;
  t.sgdg2_probe = &sgdg2_probe<T>;
  t.sgdg2_dots = &sgdg2_dots<T>;
  t.sgdg2_step = &sgdg2_step<T>;
  t.conv2d_forward = &conv2d_forward<T>;
  t.conv2d_backward = &conv2d_backward<T>;
  t.maxpool2d_forward = &maxpool2d_forward<T>;
  t.maxpool2d_backward = &maxpool2d_backward<T>;
  t.avgpool2d_forward = &avgpool2d_forward<T>;
  t.avgpool2d_backward = &avgpool2d_backward<T>;
  t.lstm_forward = &lstm_forward<T>;
  t.lstm_backward = &lstm_backward<T>;
  t.batchnorm_forward = &batchnorm_forward<T>;
  t.batchnorm_backward = &batchnorm_backward<T>;
  t.regularizer_penalty = &regularizer_penalty<T>;
  t.rmsprop_update = &rmsprop_update<T>;
  t.nadam_update = &nadam_update<T>;
  t.upsampling2d_forward = &upsampling2d_forward<T>;
  t.upsampling2d_backward = &upsampling2d_backward<T>;
  t.zeropadding2d_forward = &zeropadding2d_forward<T>;
  t.zeropadding2d_backward = &zeropadding2d_backward<T>;
  t.conv2d_transpose_forward = &conv2d_transpose_forward<T>;
  t.conv2d_transpose_backward = &conv2d_transpose_backward<T>;
  return t;
}

}  // namespace

template <>
const KernelTable<float>& kernels<float>() {
  static const KernelTable<float> table = make_table<float>();
  return table;
}
template <>
const KernelTable<double>& kernels<double>() {
  static const KernelTable<double> table = make_table<double>();
  return table;
}

}  // namespace ref
}  // namespace dlfast
