"""The commands answer before the heavy libraries are imported: a refused override, a refused
sweep, a missing run and ``--help`` leave torch, Lightning, torchvision and matplotlib
unimported (issue #30). Each runs the real entry point in a fresh interpreter, which then
lists what it imported; the timings themselves are convae-bench --startup's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "pytorch_lightning", "lightning_fabric", "torchvision", "matplotlib", "pandas")
PROBE = """
import json, sys
sys.argv = {argv!r}
from {module} import main
try:
    code = main()
except SystemExit as stop:
    code = stop.code
    if isinstance(code, str):  # what the interpreter does with such an exit: print it, 1
        print(code, file=sys.stderr)
        code = 1
print(json.dumps({{"code": code, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""

CASES = [
    ("convae.train", ["convae-train", "model.upsample=bogus"], "model.upsample"),
    ("convae.train", ["convae-train", "trainer.precision=fp8"], "trainer.precision"),
    ("convae.train", ["convae-train", "-m", "model.upsample=nearest,bogus"], "job 2 of 2"),
    ("convae.train", ["convae-train", "+foo=1"], "foo"),
    ("convae.train", ["convae-train", "--help"], None),
    ("convae.evaluate", ["convae-eval", "ckpt=no/such/run"], "ckpt"),
    ("convae.evaluate", ["convae-eval", "--help"], None),
    ("convae.report.cli", ["convae-report", "--help"], None),
]


@pytest.mark.parametrize("module,argv,key", CASES, ids=[" ".join(a[1:]) for _, a, _ in CASES])
def test_an_answer_before_training_imports_no_heavy_library(tmp_path, module, argv, key):
    code = PROBE.format(argv=argv, module=module, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], proc.stderr
    if key is None:
        assert result["code"] in (0, None) and argv[0] in proc.stdout  # the help text
    else:
        (line,) = proc.stderr.strip().splitlines()
        assert result["code"] == 1 and line.startswith(f"{argv[0]}: error: ") and key in line
        assert not (tmp_path / "outputs" / "runs").exists()
        assert not (tmp_path / "multirun").exists() or not any((tmp_path / "multirun").iterdir())
