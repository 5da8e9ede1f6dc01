// dlfast._core conv bindings: NOT IMPLEMENTED YET (nothing is exposed).
#include "bindings/array_check.h"

namespace dlfast {
namespace bind {

void bind_conv(py::module_&) {}

}  // namespace bind
}  // namespace dlfast
