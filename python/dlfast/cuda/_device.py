"""The CUDA extension as the rest of ``dlfast.cuda`` sees it: ``ext`` (the module
``dlfast._cuda``, or None in a build without it) and whether a GPU can be used. A leaf module
(it imports nothing of dlfast.cuda), so the package, ``cuda.ops`` and ``dlfast.backend.cuda`` all
read it without importing one another; the tests swap ``ext`` for a NumPy stand-in."""

try:
    from .. import _cuda as ext
except ImportError as error:  # built without CUDA
    ext = None
    import_error = str(error)

#: (device count, why not available) once queried; None before
status = None


def query():
    global status
    if status is None:
        if ext is None:
            status = (0, "this build has no CUDA module (installed with DLFAST_CUDA=OFF, or no "
                         "CUDA compiler was found at build time)")
        else:
            count, why = ext.status()
            status = (int(count), why)
    return status


def require(what):
    """The extension module, or RuntimeError naming ``dlfast.cuda.<what>`` without a GPU."""
    count, why = query()
    if count <= 0:
        raise RuntimeError(f"dlfast.cuda.{what}: no GPU available: {why}")
    return ext
