"""Runs fuzz cases in child processes, so that a crash or a hang is a result and not a dead run.

Parent side (``run_cases``): the cases go to a few children in groups; each child runs its
group and reports one JSON line per case as it finishes it. A child that dies (a signal, an
abort) or outlives its timeout has its unreported cases run again, one child per case, which
tells the crashing or hanging case from the innocent ones. Child side: ``python runner.py
--child [--full]``, the case ids on stdin, one a line.

Outcomes: ``answer`` (returned; checked against the NumPy reference when the case has one),
``clean_error`` (TypeError, ValueError, OSError or MemoryError, expected or allowed), and the
failures ``wrong`` (a wrong answer, an answer where a clean error was expected or the other
way round), ``unclean`` (any other exception), ``crash`` and ``hang``."""

import json
import os
import subprocess
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
CLEAN_ERRORS = (TypeError, ValueError, OSError, MemoryError)
FAILURES = ("wrong", "unclean", "crash", "hang")


def outcome_of(case):
    """(outcome, detail) of running one case in this process."""
    try:
        case.run()
    except AssertionError as e:
        return "wrong", f"wrong answer: {e}"[:600]
    except CLEAN_ERRORS as e:
        if case.expect == "answer":
            return "wrong", f"refused ({type(e).__name__}: {e}) where an answer was due"[:600]
        return "clean_error", f"{type(e).__name__}: {e}"[:300]
    except BaseException as e:  # noqa: BLE001  (RecursionError, RuntimeError, ... all count)
        tb = traceback.format_exc(limit=-3)
        return "unclean", f"{type(e).__name__}: {e}\n{tb}"[:800]
    if case.expect == "error":
        return "wrong", "accepted where a clean error (TypeError/ValueError) was due"
    return "answer", ""


def child_main(argv):
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashing case leaves no core file
    full = "--full" in argv
    ids = [line for line in sys.stdin.read().split("\n") if line]
    sys.path[:0] = [HERE, os.path.dirname(HERE)]
    import cases as cases_module
    import dlfast
    by_id = {c.id: c for c in cases_module.all_cases(full)}
    for cid in ids:
        case = by_id[cid]
        dlfast.set_num_threads(case.threads)
        outcome, detail = outcome_of(case)
        sys.stdout.write(json.dumps({"id": cid, "outcome": outcome, "detail": detail}) + "\n")
        sys.stdout.flush()


def _spawn(ids, full, timeout):
    """({id: (outcome, detail)} reported, died: bool, hung: bool) of one child on ids."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child"] + (["--full"] if full else [])
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    try:
        p = subprocess.run(cmd, input="\n".join(ids), capture_output=True, text=True,
                           timeout=timeout, env=env)
        out, died, hung, err = p.stdout, p.returncode != 0, False, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        died, hung, err = True, True, ""
    got = {}
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            got[r["id"]] = (r["outcome"], r["detail"])
    return got, died, hung, err


def run_cases(cases, full=False, group_size=60, group_timeout=120.0, case_timeout=30.0):
    """{case id: (outcome, detail)} for every case, each family's cases in groups."""
    results = {}
    groups, current = [], []
    for c in cases:  # a group never mixes families, so one crash costs one family's re-run
        if current and (len(current) >= group_size or current[-1].family != c.family):
            groups.append(current)
            current = []
        current.append(c)
    if current:
        groups.append(current)
    for group in groups:
        got, died, _, _ = _spawn([c.id for c in group], full, group_timeout)
        results.update(got)
        if died:
            for c in group:
                if c.id in results:
                    continue
                one, _, hung, err = _spawn([c.id], full, case_timeout)
                if c.id in one:
                    results[c.id] = one[c.id]
                elif hung:
                    results[c.id] = ("hang", f"no result within {case_timeout:.0f} s")
                else:
                    results[c.id] = ("crash", "the process died: " + err.strip()[-500:])
    return results


def summary_line(cases, results, full):
    counts = {k: 0 for k in ("answer", "clean_error") + FAILURES}
    for c in cases:
        counts[results[c.id][0]] += 1
    return (f"fuzz ({'full set' if full else 'fixed-seed subset'}): {len(cases)} cases, "
            f"{counts['answer']} answers (checked against NumPy where there is one), "
            f"{counts['clean_error']} clean errors, {counts['crash']} crashes, "
            f"{counts['hang']} hangs, {counts['wrong']} wrong answers, "
            f"{counts['unclean']} unclean errors")


if __name__ == "__main__":
    if "--child" in sys.argv:
        child_main(sys.argv[1:])
    else:  # stand-alone: python tests/fuzz/runner.py [--full]
        sys.path[:0] = [HERE, os.path.dirname(HERE)]
        import cases as cases_module
        full = "--full" in sys.argv
        cs = cases_module.all_cases(full)
        res = run_cases(cs, full)
        for c in cs:
            if res[c.id][0] in FAILURES:
                print(f"{res[c.id][0].upper():8s} {c.id}: {res[c.id][1]}")
        print(summary_line(cs, res, full))
