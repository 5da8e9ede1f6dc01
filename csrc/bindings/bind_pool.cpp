// dlfast._core pool bindings: NOT IMPLEMENTED YET (nothing is exposed).
#include "bindings/array_check.h"

namespace dlfast {
namespace bind {

void bind_pool(py::module_&) {}

}  // namespace bind
}  // namespace dlfast
