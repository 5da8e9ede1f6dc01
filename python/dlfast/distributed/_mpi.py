"""The MPI world, through mpi4py (imported only by ``init``): the communicator, the abort on an
uncaught exception, and the one packing helper every collective here uses (arrays of one dtype
copied into one contiguous buffer, so a list of arrays costs one MPI call)."""

import sys

import numpy as np

INSTALL = ('dlfast.distributed needs mpi4py and an MPI library: pip install "dlfast[distributed]" '
           '(that is, pip install mpi4py mpich, which gives mpiexec with no system MPI)')

_state = {"MPI": None, "comm": None, "local_rank": None, "hook": None}


def init(abort_on_exception=True):
    """Start MPI (mpi4py's MPI_Init); safe to call twice. With ``abort_on_exception`` an uncaught
    exception on any rank prints its traceback and calls ``MPI_Abort``, so the whole job exits
    non-zero at once instead of the other ranks waiting forever in a collective."""
    if _state["comm"] is not None:
        return
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"{INSTALL}; importing mpi4py failed: {e}") from e
    if not MPI.Is_initialized():
        MPI.Init()
    comm = MPI.COMM_WORLD
    _state.update(MPI=MPI, comm=comm)
    if abort_on_exception and _state["hook"] is None:
        previous = sys.excepthook

        def abort(exc_type, exc, tb):
            previous(exc_type, exc, tb)
            sys.stdout.flush()
            sys.stderr.flush()
            if comm.Get_size() > 1:
                comm.Abort(1)

        _state["hook"] = sys.excepthook = abort


def is_initialized():
    """Whether ``init()`` has run in this process."""
    return _state["comm"] is not None


def comm():
    """mpi4py's COMM_WORLD, once ``init()`` has run."""
    if _state["comm"] is None:
        raise RuntimeError("dlfast.distributed is not initialized: call "
                           "dlfast.distributed.init() first (after pip install "
                           '"dlfast[distributed]")')
    return _state["comm"]


def mpi():
    comm()
    return _state["MPI"]


def rank():
    """This process's rank in the job, 0 ... size() - 1."""
    return comm().Get_rank()


def size():
    """The number of processes in the job."""
    return comm().Get_size()


def local_rank():
    """This process's rank among the processes of the job on the same machine."""
    if _state["local_rank"] is None:
        local = comm().Split_type(mpi().COMM_TYPE_SHARED)
        _state["local_rank"] = local.Get_rank()
        local.Free()
    return _state["local_rank"]


def groups(arrays):
    """{dtype: [arrays]} in order: one contiguous buffer (one MPI call) per dtype."""
    out = {}
    for a in arrays:
        out.setdefault(np.dtype(a.dtype), []).append(a)
    return out


def pack(arrays, buffer):
    """Copy ``arrays`` (one dtype) into the first elements of ``buffer``; returns that part."""
    total = sum(a.size for a in arrays)
    flat, off = buffer[:total], 0
    for a in arrays:
        flat[off:off + a.size] = a.reshape(-1)
        off += a.size
    return flat


def unpack(flat, arrays):
    """The inverse of ``pack``: write ``flat`` back into ``arrays`` in place."""
    off = 0
    for a in arrays:
        np.copyto(a, flat[off:off + a.size].reshape(a.shape))
        off += a.size


def allreduce_mean(arrays, scratch=None):
    """Average ``arrays`` over the ranks in place, one ``Allreduce`` per dtype (the arrays of a
    dtype packed into one buffer first, unless there is just one contiguous array). ``scratch``:
    a dict keeping the packing buffers between calls. Returns the number of MPI calls made."""
    c, p = comm(), size()
    if p == 1 or not arrays:
        return 0
    scratch = {} if scratch is None else scratch
    calls = 0
    for dtype, group in groups(arrays).items():
        if dtype.kind != "f":
            raise TypeError(f"allreduce_mean: expected floating-point arrays, got {dtype}")
        direct = len(group) == 1 and group[0].flags.c_contiguous
        if direct:
            flat = group[0].reshape(-1)
        else:
            total = sum(a.size for a in group)
            buf = scratch.get(dtype)
            if buf is None or buf.size < total:
                buf = scratch[dtype] = np.empty(total, dtype)
            flat = pack(group, buf)
        c.Allreduce(mpi().IN_PLACE, flat, op=mpi().SUM)
        flat /= dtype.type(p)
        if not direct:
            unpack(flat, group)
        calls += 1
    return calls


def broadcast(arrays, root):
    """Give every rank ``root``'s values of ``arrays`` (in place), one ``Bcast`` per dtype."""
    c = comm()
    if c.Get_size() == 1:
        return
    for dtype, group in groups(arrays).items():
        flat = pack(group, np.empty(sum(a.size for a in group), dtype))
        c.Bcast(flat, root=root)
        unpack(flat, group)


def check_root(root, what):
    """``root`` as a rank of this job, or a clear error."""
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)):
        raise TypeError(f"{what}: root must be an int rank, got {root!r}")
    if not 0 <= root < size():
        raise ValueError(f"{what}: root must be a rank in [0, {size() - 1}] (the job has "
                         f"{size()} processes), got {root}")
    return int(root)
