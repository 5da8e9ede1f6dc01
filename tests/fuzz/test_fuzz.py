"""The fuzz suite (issue 18): bad, empty and non-finite input through the ops, layers, models
and model files, each case in a child process (runner.py) so that a crash or a hang fails a
test instead of ending the run. cases.py says what the cases are.

The normal run takes the fixed-seed subset; ``pytest --fuzz-full`` (or DLFAST_FUZZ_FULL=1)
the full set. One test per family; the summary line is printed at the end of the run."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cases as cases_module  # noqa: E402
import runner  # noqa: E402

FAMILIES = ("zero_size", "nonfinite", "hostile_arrays", "loss_shapes", "layers", "models",
            "files")
SUMMARY = []  # the summary line, for conftest.py's terminal summary


def full_run(config):
    return config.getoption("--fuzz-full") or os.environ.get("DLFAST_FUZZ_FULL") == "1"


@pytest.fixture(scope="module")
def fuzz_results(request):
    full = full_run(request.config)
    cases = cases_module.all_cases(full)
    results = runner.run_cases(cases, full)
    SUMMARY[:] = [runner.summary_line(cases, results, full)]
    return cases, results


@pytest.mark.parametrize("family", FAMILIES)
def test_family_has_no_crash_hang_or_wrong_answer(fuzz_results, family):
    cases, results = fuzz_results
    mine = [c for c in cases if c.family == family]
    assert mine, f"no {family} cases"
    bad = [f"{results[c.id][0].upper()} {c.id}: {results[c.id][1]}" for c in mine
           if results[c.id][0] in runner.FAILURES]
    assert not bad, f"{len(bad)} of {len(mine)} {family} cases failed:\n" + "\n".join(bad)


def test_runner_tells_crashes_and_hangs_from_the_other_cases(monkeypatch):
    """Self-test: a case that aborts and one that sleeps, between two innocent ones, in one
    group: both are found and named, the innocent ones still get their results."""
    monkeypatch.setenv("DLFAST_FUZZ_SELFTEST", "1")
    cases = [c for c in cases_module.all_cases(False) if c.family == "selftest"]
    results = runner.run_cases(cases, group_timeout=20, case_timeout=3)
    assert {c.id: results[c.id][0] for c in cases} == {
        "selftest/ok before": "answer", "selftest/abort": "crash", "selftest/hang": "hang",
        "selftest/clean error": "clean_error", "selftest/RecursionError": "unclean",
        "selftest/accepted bad input": "wrong"}
