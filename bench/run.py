"""Run dlfast's benchmarks: ``python bench/run.py [groups or name fragments] [options]``.

Groups: gemm, dense, train, conv, lstm, optim, gan (default: all). A word that is not a group selects
the cases whose name contains it (e.g. ``iris``, ``2048``). See bench/README.md."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import cases as cases_module  # noqa: E402
import cases_conv  # noqa: E402
import cases_lstm  # noqa: E402
import cases_gru  # noqa: E402
import cases_optim  # noqa: E402
import cases_gan  # noqa: E402

GROUPS = ("gemm", "dense", "train", "conv", "lstm", "gru", "optim", "gan")

# (case name, baseline, minimum speedup = baseline time / dlfast time)
TARGETS = [
    ("sgemm 2048x2048x2048", "numpy", 0.95),
    ("mlp 784-256-128-10 train step b64", "numpy", 1.4),
    ("mlp 784-256-128-10 train step b64", "torch", 1.4),
    ("iris 4-32-16-3 train step b16", "numpy", 1.4),
    ("iris 4-32-16-3 train step b16", "torch", 5.0),
    ("cifar model train step b64", "torch_nchw", 1.2),
    ("cifar model train step b64", "torch_cl", 1.2),
    ("cifar model train step b64", "numpy", 10.0),
    ("maxpool 2x2 fwd+bwd (64,32,32,32)", "torch_cl", 1.2),
    ("lstm(128) -> dense(10) train step N64 T32 D64", "torch", 1.3),
    ("lstm(128) -> dense(10) train step N64 T32 D64", "numpy", 4.0),
    ("lstm(64) -> dense(10) train step N32 T20 D32", "torch", 1.5),
    ("sgd momentum update 1M float32", "numpy", 3.0),
    ("adam update 1M float32", "numpy", 3.0),
    ("adamax update 1M float32", "numpy", 3.0),
    ("adadelta update 1M float32", "numpy", 3.0),
    ("dcgan digits step (D real+fake, G through frozen D) b64", "torch", 1.3),
    ("Conv2DTranspose 64->32 4x4 stride 2 'same' 8x8->16x16 batch 64 forward+backward",
     "torch_cl", 1.3),
    ("Conv2DTranspose 64->32 4x4 stride 2 'same' 8x8->16x16 batch 64 forward+backward",
     "numpy", 3.0),
]


def select(all_cases, words):
    if not words:
        return all_cases
    return [c for c in all_cases if c.group in words or any(w in c.name for w in words)]


def target_lines(results):
    by_name = {r.case.name: r for r in results}
    lines, ok = [], True
    for name, base, need in TARGETS:
        r = by_name.get(name)
        what = f"{name}: dlfast >= {need}x {base}"
        if r is None:
            continue
        if not r.check_ok:
            lines.append(f"FAIL  {what} (output check failed)")
            ok = False
        elif r.speedup(base) is None:
            lines.append(f"SKIP  {what} ({base} not available)")
        else:
            got = r.speedup(base)
            passed = got >= need
            ok &= passed
            lines.append(f"{'PASS' if passed else 'FAIL'}  {what}: measured {got:.2f}x")
    return lines, ok


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("select", nargs="*",
                   help="groups (gemm, dense, train, conv, lstm, optim) or name fragments")
    p.add_argument("--threads", type=int, default=2, help="threads for every library (2)")
    p.add_argument("--quick", action="store_true", help="fewer, shorter repeats (a smoke run)")
    p.add_argument("--repeats", type=int, help="timed repeats per implementation")
    p.add_argument("--json", metavar="PATH", help="write all results and machine info")
    p.add_argument("--plot", metavar="PATH", help="write a bar chart of speedups (matplotlib)")
    p.add_argument("--no-breakdown", action="store_true", help="skip the iris step breakdown")
    args = p.parse_args(argv)

    repeats = args.repeats or (5 if args.quick else 25)
    block_s, warmup_s = (0.005, 0.05) if args.quick else (0.02, 0.2)
    thread_note, _limiter = harness.set_threads(args.threads)
    info = harness.machine_info(args.threads, thread_note)

    chosen = select(cases_module.all_cases() + cases_conv.conv_cases()
                    + cases_lstm.lstm_cases() + cases_gru.gru_cases() + cases_optim.optim_cases()
                    + cases_gan.gan_cases(), args.select)
    if not chosen:
        p.error(f"nothing matches {args.select}; groups are {', '.join(GROUPS)}")

    d = info["dlfast"]
    print(f"dlfast {d['version']} ({d['cpu_isa']}, {d['build_type']}, {d['compiler']}) | "
          f"numpy {info['numpy']} | torch {info['torch'] or 'not installed'} | "
          f"python {info['python']}")
    print(f"CPU: {info['cpu_model']} ({info['cpu_count']} logical CPUs) | threads: "
          f"{args.threads} ({thread_note})")
    warning = harness.load_warning(info["loadavg_start"], info["cpu_count"])
    if warning:
        print(warning)
    print(f"timing: median of {repeats} blocks (>= {block_s * 1e3:g} ms) per implementation, in 5 "
          f"interleaved rounds, each turn after a 0.25 s pause and a warm-up block; "
          f"first warm-up {warmup_s * 1e3:g} ms\n")

    results = []
    for case in chosen:
        print(f"  {case.group}: {case.name} ...", end="\r", file=sys.stderr, flush=True)
        r = harness.run_case(case, repeats, block_s, warmup_s)
        print(" " * 80, end="\r", file=sys.stderr)
        results.append(r)
    info["loadavg_end"] = harness.load_average()
    harness.print_table(results)
    warning = harness.load_warning(info["loadavg_end"], info["cpu_count"])
    if warning:
        print(warning.replace("load average", "at the end, load average"))

    lines, all_ok = target_lines(results)
    if lines:
        print("\nTargets:")
        print("\n".join(lines))

    breakdown = None
    if not args.no_breakdown and any("iris" in r.case.name for r in results):
        breakdown = cases_module.iris_breakdown(
            lambda fn: harness.time_fn(fn, repeats, block_s, warmup_s))
        print("\nIris train_on_batch breakdown (dlfast, batch 16; each part timed alone):")
        if "unavailable" in breakdown:
            print(f"  unavailable: {breakdown['unavailable']}")
        else:
            total = breakdown["train_on_batch (total)"]
            main_parts = [k for k in breakdown if not k.startswith(" ") and "total" not in k]
            rest = total - sum(breakdown[k] for k in main_parts)
            for k, t in breakdown.items():
                print(f"  {k:<40} {t * 1e6:8.2f} us" +
                      (f"  {100 * t / total:5.1f}%" if not k.startswith(" ") else ""))
            print(f"  {'rest (glue, float(), calls)':<40} {rest * 1e6:8.2f} us  "
                  f"{100 * rest / total:5.1f}%")

    if args.json:
        harness.write_json(args.json, {
            "machine": info,
            "settings": {"repeats": repeats, "block_s": block_s, "warmup_s": warmup_s,
                         "select": args.select},
            "results": [r.to_dict() for r in results],
            "targets": lines,
            "iris_breakdown_s": breakdown,
        })
        print(f"\nwrote {args.json}")
    if args.plot:
        harness.plot_speedups(results, args.plot)
        print(f"wrote {args.plot}")

    wrong = [r.case.name for r in results if not r.check_ok]
    if wrong:
        print(f"\nWRONG OUTPUT (not timed): {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
