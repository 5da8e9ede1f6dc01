from dlfast import _core
