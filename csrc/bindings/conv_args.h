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

}  // namespace bind
}  // namespace dlfast
