"""``python -m dlfast demo | info | bench``."""

import argparse
import json
import os
import subprocess
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dlfast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train the course's examples on bundled data")
    demo.add_argument("--quick", action="store_true", help="fewer epochs (a smoke test)")
    sub.add_parser("info", help="print dlfast.info()")
    bench = sub.add_parser("bench", help="run bench/ (from a checkout)")
    bench.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "info":
        import dlfast
        print(json.dumps(dlfast.info(), indent=2))
        return 0
    if args.command == "demo":
        from .demo import run_demo
        run_demo(quick=args.quick)
        return 0
    if args.command == "bench":
        script = os.path.join(os.getcwd(), "bench", "run.py")
        if not os.path.exists(script):
            print("python -m dlfast bench runs bench/run.py from a dlfast checkout; "
                  f"none found under {os.getcwd()}", file=sys.stderr)
            return 2
        return subprocess.call([sys.executable, script] + args.args)
    return 2
