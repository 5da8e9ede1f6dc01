// Argument checks shared by the convolution bindings (bind_conv.cpp defines them; the
// transposed convolution's binding uses them too): strides/dilations and the padding name.
#pragma once
#include <cstdint>
#include <string>
#include <utility>

namespace dlfast {
namespace bind {

using Pair = std::pair<int64_t, int64_t>;

// Keeps (k - 1) * d + 1 and (P - 1) * s far from int64 overflow for any array that fits memory.
constexpr int64_t kMaxStep = int64_t(1) << 31;

// ValueError "fn: <what> must be positive integers (>= 1), got (a, b)" unless 1 <= a, b <= 2^31.
void check_step(const char* fn, const char* what, const Pair& v);
// true for 'same', false for 'valid', else ValueError naming what came.
bool same_padding(const char* fn, const std::string& padding);

// One axis of a sliding window (convolution or pool), TensorFlow's arithmetic, the one place
// it is written (Python reads it as dlfast._core.window_axis):
//   'valid': out = floor((n - span) / s) + 1, span = (k - 1) * d + 1; it fits when span <= n
//   'same':  out = ceil(n / s), total pad = max((out - 1) * s + span - n, 0), before = total / 2
struct WindowAxis {
  int64_t out, pad_before;
  bool fits;
};
WindowAxis window_axis(int64_t n, int64_t k, int64_t stride, int64_t dilation, bool same);

}  // namespace bind
}  // namespace dlfast
