"""Benchmark harness: check first, then time implementations side by side.

A Case is one piece of work with several implementations (zero-argument callables keyed by
'dlfast', 'numpy', 'torch'). ``run_case`` calls ``case.check()`` (which compares dlfast, and
where useful the others, against a NumPy reference and returns a short description or raises
``CheckFailed``) and times nothing if the check fails. Timing is interleaved: in each of several rounds every
implementation gets a turn (round robin), after a pause that lets the previous library's
spinning worker threads go idle and a warm-up block; a turn is a few blocks, a block ``inner``
back-to-back calls, with ``inner`` chosen so a block lasts at least ``block_s`` (so that
microsecond-sized work is not lost in timer noise). The reported time is the median over
repeats of the per-call time of a block. GC is disabled inside blocks, as timeit does.
"""

import gc
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field

import numpy as np

import dlfast

try:
    import torch
except ImportError:  # torch is optional: its column is left empty
    torch = None

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None

BASELINES = ("numpy", "torch", "torch_nchw", "torch_cl")  # torch_*: conv cases, by layout


class CheckFailed(AssertionError):
    pass


@dataclass
class Case:
    group: str
    name: str
    impls: dict                 # label -> zero-arg callable doing the work once
    check: object = None        # () -> str (what was checked) or raises CheckFailed
    flops: float = None         # per call, where defined
    notes: str = ""
    bytes: float = None         # memory traffic per call, for memory-bound cases (GB/s)


@dataclass
class Result:
    case: Case
    check_ok: bool
    check_detail: str
    times: dict = field(default_factory=dict)    # label -> [per-call seconds, one per repeat]
    inner: dict = field(default_factory=dict)

    def median(self, label):
        return statistics.median(self.times[label]) if label in self.times else None

    def gflops(self, label):
        t = self.median(label)
        return None if t is None or not self.case.flops else self.case.flops / t / 1e9

    def gbytes_per_s(self, label):
        t = self.median(label)
        return None if t is None or not self.case.bytes else self.case.bytes / t / 1e9

    def rate(self, label):
        """The table's throughput cell: GFLOP/s, or GB/s for a memory-bound case."""
        if self.case.bytes:
            x = self.gbytes_per_s(label)
            return None if x is None else f"{x:.1f} GB/s"
        return fmt(self.gflops(label), ".1f")

    def speedup(self, other):
        """other_time / dlfast_time: > 1 means dlfast is faster."""
        a, b = self.median("dlfast"), self.median(other)
        return None if a is None or b is None else b / a

    def to_dict(self):
        c = self.case
        return {
            "group": c.group, "name": c.name, "flops": c.flops, "notes": c.notes,
            "check": {"ok": self.check_ok, "detail": self.check_detail},
            "impls": {k: {"median_s": self.median(k), "min_s": min(v), "gflops": self.gflops(k),
                          "gbytes_per_s": self.gbytes_per_s(k),
                          "inner": self.inner[k], "samples_s": v}
                      for k, v in self.times.items()},
            "speedup": {k: self.speedup(k) for k in BASELINES if k in self.times},
        }


def set_threads(n):
    """n threads for dlfast, torch and NumPy's BLAS (through threadpoolctl when installed).
    Returns a note on what was done, and the threadpoolctl limiter to keep alive."""
    dlfast.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    if threadpoolctl is None:
        return "numpy BLAS threads left at default (threadpoolctl not installed)", None
    limiter = threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    return f"numpy BLAS threads set to {n} with threadpoolctl", limiter


def _block(fn, inner):
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def run_case(case, repeats, block_s, warmup_s, rounds=5, settle_s=0.25):
    """Check, then time: `rounds` rounds, each giving every implementation in turn a turn of
    ceil(repeats / rounds) timed blocks. Before its turn an implementation waits `settle_s`
    and warms up again: BLAS libraries keep their worker threads spinning after a call
    (OpenBLAS for ~0.1-0.2 s here), which would steal a core from whoever runs next and
    measure the previous library's idle policy instead of this one's speed."""
    try:
        detail = case.check() if case.check else "not checked"
    except CheckFailed as e:
        return Result(case, False, str(e))
    res = Result(case, True, detail)
    per_round = -(-repeats // rounds)
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        for label, fn in case.impls.items():   # first warm-up, and pick the block size
            time.sleep(settle_s)
            fn()
            t_end, n, t0 = time.perf_counter() + warmup_s, 0, time.perf_counter()
            while True:
                fn()
                n += 1
                if time.perf_counter() >= t_end:
                    break
            per_call = (time.perf_counter() - t0) / n
            res.inner[label] = max(1, int(block_s / per_call))
            res.times[label] = []
        for _ in range(rounds):                   # round robin: a turn of each, again
            for label, fn in case.impls.items():
                time.sleep(settle_s)
                _block(fn, res.inner[label])        # warm again (own threads awake)
                for _ in range(per_round):
                    res.times[label].append(_block(fn, res.inner[label]))
    finally:
        if gc_was_on:
            gc.enable()
    return res


def time_fn(fn, repeats, block_s, warmup_s):
    """Median per-call seconds of one callable (for breakdowns)."""
    return run_case(Case("", "", {"x": fn}), repeats, block_s, warmup_s, rounds=1,
                    settle_s=0.0).median("x")


# --- checking helpers -----------------------------------------------------------------------

def max_rel_err(got, ref):
    """max |got - ref| / max(|ref|, tiny), over the whole array (a norm-wise relative error)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        raise CheckFailed(f"shape {got.shape} != reference {ref.shape}")
    if not np.all(np.isfinite(got)):
        raise CheckFailed("non-finite values in the output")
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30))


def expect_close(label, pairs, tol):
    """pairs: [(what, got, ref)]; raises CheckFailed naming the worst offender."""
    worst = 0.0
    for what, got, ref in pairs:
        err = max_rel_err(got, ref)
        if not err <= tol:
            raise CheckFailed(f"{label} {what}: relative error {err:.2e} > {tol:.0e}")
        worst = max(worst, err)
    return worst


# --- machine info and output ----------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def load_warning(load, ncpu):
    """A warning line when other work was running (the 1-minute load above half the CPUs)."""
    if load and ncpu and load[0] > 0.5 * ncpu:
        return (f"WARNING: load average {load[0]:.1f} on {ncpu} CPUs: other processes are "
                f"competing for the cores, timings (multi-threaded ones most) are unreliable")
    return None


def machine_info(threads, thread_note):
    info = {
        "dlfast": dlfast.info(), "numpy": np.__version__,
        "torch": getattr(torch, "__version__", None), "python": sys.version.split()[0],
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "threads": threads,
        "thread_note": thread_note, "loadavg_start": load_average(),
    }
    if threadpoolctl is not None:
        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "num_threads",
                                                "architecture")}
                        for d in threadpoolctl.threadpool_info() if d.get("user_api") == "blas"]
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    return info


def fmt_time(t):
    if t is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale or unit == "us":
            return f"{t / scale:.3g} {unit}" if t / scale < 100 else f"{t / scale:.0f} {unit}"


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def print_table(results, file=sys.stdout):
    labels = ["dlfast"] + [b for b in BASELINES if any(b in r.case.impls for r in results)]
    w = max([len(r.case.name) for r in results] + [20])
    tw = {l: max(10, len(l) + 1) for l in labels}          # column widths
    gw = {l: max(11, len(l) + 6) for l in labels}
    vw = {l: max(10, len(l) + 4) for l in labels}
    head = f"{'case':<{w}}  " + "".join(f"{l:>{tw[l]}}" for l in labels)
    head += "".join(f"{'GF/s ' + l:>{gw[l]}}" for l in labels)
    head += "".join(f"{'vs ' + b:>{vw[b]}}" for b in labels[1:])
    group = None
    print(head, file=file)
    print("-" * len(head), file=file)
    for r in results:
        if r.case.group != group:
            group = r.case.group
            print(f"[{group}]", file=file)
        if not r.check_ok:
            print(f"{r.case.name:<{w}}  WRONG, not timed: {r.check_detail}", file=file)
            continue
        line = f"{r.case.name:<{w}}  " + "".join(
            f"{fmt_time(r.median(l)) if l in r.times else '-':>{tw[l]}}" for l in labels)
        line += "".join(f"{r.rate(l) or '-':>{gw[l]}}" for l in labels)
        line += "".join(f"{fmt(r.speedup(b), '.2f') + 'x':>{vw[b]}}" if r.speedup(b)
                        else f"{'-':>{vw[b]}}" for b in labels[1:])
        print(line, file=file)
    print("vs X = X's median time / dlfast's median time (> 1: dlfast faster); memory-bound "
          "cases give GB/s in the GF/s columns", file=file)


def write_json(path, payload):
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)


def plot_speedups(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.check_ok]
    bases = [b for b in BASELINES if any(r.speedup(b) for r in rows)]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) * max(len(bases), 1) + 1.5))
    height = 0.8 / max(len(bases), 1)
    y = np.arange(len(rows))
    for i, b in enumerate(bases):
        ax.barh(y + i * height, [r.speedup(b) or 0 for r in rows], height, label=f"vs {b}")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(y + height * (len(bases) - 1) / 2)
    ax.set_yticklabels([r.case.name for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("speedup of dlfast (other time / dlfast time; > 1 = dlfast faster)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
