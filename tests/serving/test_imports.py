import os
import pkgutil
import subprocess
import sys

import serving
from tests.serving.savedmodels import ROOT


def test_no_serving_module_imports_tfposenc():
    modules = sorted(f"serving.{m.name}" for m in pkgutil.iter_modules(serving.__path__))
    assert {"serving.server", "serving.repository", "serving.codec", "serving.rest"} <= set(modules)
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tfposenc'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
