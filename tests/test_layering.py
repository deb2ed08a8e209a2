"""The scoring side stays small and never loads what student code runs on."""
import subprocess
import sys


def test_scoring_process_never_imports_torch():
    code = ("import sys, grader.api, grader.cli, grader.gradescope, grader.checks; "
            "heavy = sorted(m for m in ('torch', 'torchvision', 'numpy', 'matplotlib') if m in sys.modules); "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
