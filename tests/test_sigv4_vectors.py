"""The public AWS SigV4 / S3 / Escher conformance vectors, run through webapp.signing.sigv4.sign.

The vectors and their runner (check_signer.py) live outside the repository, in
../shared/vectors; set WEBHOOKS_VECTORS_DIR to point elsewhere. A missing directory is a
failure, not a skip: these vectors are the acceptance test of the signer.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import types
from pathlib import Path

import pytest

from webapp.signing.sigv4 import sign

# What this signer achieved when the test was written (see the module docstring of
# sigv4.py for the dialect rules); a drop means a regression or a vector went missing.
FLOORS = {
    "extensions": 167,          # every applicable case, legacy Escher suite included
    "strict": 78,               # no date_header_name / normalize_path keywords
    "s3-caller-supplies-sha256": 167,
}


def vectors_dir() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "vectors"
    path = Path(os.environ.get("WEBHOOKS_VECTORS_DIR", default))
    if not (path / "check_signer.py").is_file():
        pytest.fail(f"signing vectors not found at {path} (expected check_signer.py there); "
                    f"set WEBHOOKS_VECTORS_DIR to the directory holding the vectors")
    return path


@functools.cache
def load_runner(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("check_signer", path / "check_signer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_vectors(strict: bool, s3_caller_supplies_sha256: bool = False):
    """Run every case like `check_signer.py --include-legacy [--strict]` does; return counts."""
    runner = load_runner(vectors_dir())
    args = types.SimpleNamespace(suite=None, case=None, include_legacy=True,
                                 s3_caller_supplies_sha256=s3_caller_supplies_sha256)
    extensions = runner.supported_extensions(sign, strict)
    passed, failures, not_applicable = 0, [], 0
    for case in runner.load_all(args):
        if case.skip or any(need not in extensions for need in case.needs):
            not_applicable += 1
            continue
        status, message = runner.run_case(sign, case)
        if status == "PASS":
            passed += 1
        else:  # FAIL, or UNSUPPORTED: this signer supports every dialect the runner knows
            failures.append(f"{status} {case.id}\n{message}")
    return passed, failures, not_applicable


@pytest.mark.parametrize("mode", sorted(FLOORS))
def test_signing_vectors(mode):
    passed, failures, na = run_vectors(
        strict=mode == "strict", s3_caller_supplies_sha256=mode == "s3-caller-supplies-sha256")
    print(f"signing vectors: {passed} passed, {len(failures)} failed, {na} not applicable ({mode})")
    assert not failures, "\n\n".join(failures)
    assert passed >= FLOORS[mode]


def test_strict_mode_uses_no_extension():
    runner = load_runner(vectors_dir())
    assert runner.supported_extensions(sign, strict=True) == set()
    assert runner.supported_extensions(sign, strict=False) == {"date_header_name", "normalize_path"}
