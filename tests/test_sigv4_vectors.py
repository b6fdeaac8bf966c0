"""The public AWS SigV4 / S3 / Escher conformance vectors, run through webapp.signing.sigv4.sign.

The vectors live in the repository (tests/data/signing_vectors, origin and licences in
the README there); tests/support/signing_vectors.py loads and checks them. Every run
prints how many vectors were checked.
"""
from __future__ import annotations

import collections

import pytest

from tests.support.signing_vectors import (
    SUITES,
    SUMMARY_LINES,
    VECTORS_DIR,
    load_all,
    run_case,
    supported_extensions,
)
from webapp.signing.sigv4 import sign

# What this signer achieved when the test was written (see the module docstring of
# sigv4.py for the dialect rules); a drop means a regression or a vector went missing.
FLOORS = {
    "extensions": 167,          # every applicable case, legacy Escher suite included
    "strict": 78,               # no date_header_name / normalize_path keywords
    "s3-caller-supplies-sha256": 167,
}


def run_vectors(strict: bool, s3_caller_supplies_sha256: bool = False):
    """Run every case; return (passed per suite, failures, not applicable)."""
    extensions = supported_extensions(sign, strict)
    passed, failures, not_applicable = collections.Counter(), [], 0
    for case in load_all(s3_caller_supplies_sha256):
        if case.skip or any(need not in extensions for need in case.needs):
            not_applicable += 1
            continue
        status, message = run_case(sign, case)
        if status == "PASS":
            passed[case.suite] += 1
        else:  # FAIL, or UNSUPPORTED: this signer supports every dialect the loader knows
            failures.append(f"{status} {case.id}\n{message}")
    return passed, failures, not_applicable


@pytest.mark.parametrize("mode", sorted(FLOORS))
def test_signing_vectors(request, mode):
    passed, failures, na = run_vectors(
        strict=mode == "strict", s3_caller_supplies_sha256=mode == "s3-caller-supplies-sha256")
    total = sum(passed.values())
    per_suite = ", ".join(f"{suite} {count}" for suite, count in sorted(passed.items()))
    line = f"signing vectors ({mode}): {total} passed, {len(failures)} failed, {na} not applicable [{per_suite}]"
    request.config.stash.setdefault(SUMMARY_LINES, []).append(line)  # printed at the end of the run
    assert not failures, "\n\n".join(failures)
    assert total >= FLOORS[mode]


def test_every_suite_is_in_the_repository_and_runs():
    passed, failures, _ = run_vectors(strict=False)
    assert not failures
    assert set(passed) == set(SUITES), f"suites with no passing case: {set(SUITES) - set(passed)}"
    for licence in ("aws4/aws-c-auth-v4/LICENSE", "aws4/aws-c-auth-v4/NOTICE", "aws4/aws-sig-v4-test-suite/LICENSE",
                    "aws4/aws-sig-v4-test-suite/NOTICE", "escher/EscherAuth-test-cases/LICENSE",
                    "escher/emartech-escher-test-suite/LICENSE", "README.md"):
        assert (VECTORS_DIR / licence).is_file(), licence


def test_strict_mode_uses_no_extension():
    assert supported_extensions(sign, strict=True) == set()
    assert supported_extensions(sign, strict=False) == {"date_header_name", "normalize_path"}
