"""The prefetcher cases (tests/isolated/prefetcher_cases.py) in a fresh interpreter: they count threads and worker
processes and fork workers from a reader thread, which needs a process no other test has run in."""
import os
import re
import subprocess
import sys

CASES = os.path.join(os.path.dirname(__file__), 'isolated', 'prefetcher_cases.py')


def test_prefetcher_cases_in_a_fresh_interpreter():
    proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', CASES],
                          cwd=os.path.dirname(os.path.dirname(CASES)), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r'\b5 passed', proc.stdout), proc.stdout[-2000:]
