// 2-D convolution, NHWC x HWIO, compiled once per ISA (see kernels.h). NOT IMPLEMENTED YET:
// placeholders so the dispatch table links; the bindings do not expose them.
#include "cpu/kernels.h"

namespace dlfast {
namespace DLFAST_ISA {

template <typename T>
void conv2d_forward(T*, const T*, const T*, const T*, const Conv2dShape&, Activation) {}
template <typename T>
void conv2d_backward(T*, T*, T*, const T*, const T*, const T*, const T*, const Conv2dShape&,
                     Activation, bool) {}

template void conv2d_forward<float>(float*, const float*, const float*, const float*,
                                    const Conv2dShape&, Activation);
template void conv2d_forward<double>(double*, const double*, const double*, const double*,
                                     const Conv2dShape&, Activation);
template void conv2d_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, const float*, const Conv2dShape&, Activation,
                                     bool);
template void conv2d_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, const double*, const Conv2dShape&,
                                      Activation, bool);

}  // namespace DLFAST_ISA
}  // namespace dlfast
