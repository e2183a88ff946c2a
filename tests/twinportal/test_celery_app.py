"""The Celery application's process set-up."""

from __future__ import annotations

import ctypes
import subprocess
import sys

from twinportal.celery import tune_malloc


def test_workers_keep_large_arrays_in_the_heap_on_glibc():
    # this machine's C library is glibc: every option is accepted
    assert ctypes.CDLL("libc.so.6").gnu_get_libc_version()
    assert tune_malloc() is True


def test_a_large_temporary_array_reuses_heap_pages_after_tuning():
    # minor page faults of allocating and freeing arrays of 5 to 30 MB together, 20 times over, in
    # a fresh process (a nightly chunk's temporaries are of these sizes)
    code = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from twinportal.celery import tune_malloc
    assert tune_malloc()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    live = [np.ones(n) for n in (600_000, 1_300_000, 2_500_000, 3_800_000, 1_000_000)]
    del live
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    faults = {
        mode: int(
            subprocess.run(
                [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True
            ).stdout
        )
        for mode in ("default", "tuned")
    }
    # by default the freed memory goes back to the system and comes back as fresh pages the
    # kernel zeroes (about 49,000 faults here); tuned, the first round's pages are reused
    assert faults["tuned"] * 10 < faults["default"]
