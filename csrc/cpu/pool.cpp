// 2-D pooling on NHWC, compiled once per ISA (see kernels.h). NOT IMPLEMENTED YET:
// placeholders so the dispatch table links; the bindings do not expose them.
#include "cpu/kernels.h"

namespace dlfast {
namespace DLFAST_ISA {

template <typename T>
void maxpool2d_forward(T*, const T*, const Pool2dShape&) {}
template <typename T>
void maxpool2d_backward(T*, const T*, const T*, const Pool2dShape&) {}
template <typename T>
void avgpool2d_forward(T*, const T*, const Pool2dShape&) {}
template <typename T>
void avgpool2d_backward(T*, const T*, const Pool2dShape&) {}

#define DLFAST_POOL_INSTANTIATE(T)                                                   \
  template void maxpool2d_forward<T>(T*, const T*, const Pool2dShape&);             \
  template void maxpool2d_backward<T>(T*, const T*, const T*, const Pool2dShape&);  \
  template void avgpool2d_forward<T>(T*, const T*, const Pool2dShape&);             \
  template void avgpool2d_backward<T>(T*, const T*, const Pool2dShape&);
DLFAST_POOL_INSTANTIATE(float)
DLFAST_POOL_INSTANTIATE(double)

}  // namespace DLFAST_ISA
}  // namespace dlfast
