"""``ntk_mlft.problems.cluster``: ``generate`` on a Dask cluster (LocalCluster, 2 worker processes on
loopback) gives labels bit-identical to the serial run; a worker killed mid-run loses no finished
chunk and the re-run completes from the cache. The cluster tests skip when dask.distributed is
not installed (the ``distributed`` extra; the ``test`` extra installs it)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

from ntk_mlft.problems import generate, get_problem
from ntk_mlft.problems.cluster import MISSING_DASK, dask_executor

SMALL = dict(levels=2, n_coarse=16, refinement=2, n_input=32, n_output=8)


def test_bad_arguments_name_what_is_allowed():
    with pytest.raises(ValueError, match="exactly one of scheduler"):
        with dask_executor():
            pass
    with pytest.raises(ValueError, match="local_workers must be an integer >= 1; got 0"):
        with dask_executor(local_workers=0):
            pass
    with pytest.raises(ValueError, match="tcp://HOST:PORT; got 'localhost'"):
        with dask_executor(scheduler="localhost"):
            pass


def test_missing_dask_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'ntk_mlft\[distributed\]'"):
        with dask_executor(local_workers=1):
            pass
    assert "ntk_mlft[distributed]" in MISSING_DASK


def _chunks(cache) -> dict[str, float]:
    """Finished chunk files and their mtimes (not the hidden temporaries of atomic writes)."""
    return {p: os.path.getmtime(os.path.join(cache, p)) for p in os.listdir(cache)
            if p.endswith(".npz") and not p.startswith(".")}


@pytest.mark.slow
def test_local_cluster_bit_identical_and_survives_a_killed_worker(tmp_path):
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed not installed: pip install "
                              "'ntk_mlft[distributed]' (the test extra has it)")
    problem = get_problem("elliptic-rough", **SMALL)
    counts = [40, 12]
    serial = generate(problem, counts, seed=3, chunk_size=2)
    cache = tmp_path / "cache"
    with dask_executor(local_workers=2) as executor:
        pids = distributed.default_client().run(os.getpid)
        result: dict = {}

        def work():
            try:
                result["data"] = generate(problem, counts, seed=3, cache_dir=cache,
                                          executor=executor, chunk_size=2)
            except BaseException as err:  # noqa: BLE001  (a killed worker may end the run)
                result["error"] = err

        thread = threading.Thread(target=work)
        thread.start()
        deadline = time.monotonic() + 120
        while (not cache.exists() or len(_chunks(cache)) < 3) and time.monotonic() < deadline:
            time.sleep(0.05)
        before_kill = _chunks(cache)
        assert 3 <= len(before_kill) < 26, "the kill must happen mid-run"
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        thread.join(timeout=300)
        assert not thread.is_alive()
    after_first_run = _chunks(cache)
    for name, mtime in before_kill.items():  # no finished chunk was lost or rewritten
        assert after_first_run.get(name) == mtime, name
    rerun = generate(problem, counts, seed=3, cache_dir=cache, chunk_size=2)
    if "data" in result:  # Dask rescheduled the killed worker's chunks: the re-run solves nothing
        assert _chunks(cache) == after_first_run
    for name, mtime in before_kill.items():
        assert _chunks(cache)[name] == mtime, name
    for data in [rerun] + ([result["data"]] if "data" in result else []):
        for a, b in zip(data.inputs + data.outputs, serial.inputs + serial.outputs):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("argv, phrase", [
    (["--dask-local", "0"], "argument --dask-local: must be >= 1"),
    (["--dask-local", "2", "--workers", "2"], "drop --workers"),
    (["--scheduler", "localhost:8786"], "tcp://HOST:PORT"),
])
def test_cli_bad_cluster_options_one_clear_line(tmp_path, capsys, argv, phrase):
    from ntk_mlft.cli import main

    try:                                    # parse-time errors exit through argparse
        status = main(["generate", "--problem", "elliptic-rough", "--counts", "4,2",
                       "--out", str(tmp_path / "d"), *argv])
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and phrase in err and "Traceback" not in err, err


def test_cli_without_dask_says_how_to_install(tmp_path, capsys, monkeypatch):
    from ntk_mlft.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)
    status = main(["generate", "--problem", "elliptic-rough", "--counts", "4,2",
                   "--out", str(tmp_path / "d"), "--dask-local", "2"])
    err = capsys.readouterr().err
    assert status == 2 and "ntk_mlft[distributed]" in err and "Traceback" not in err, err


@pytest.mark.slow  # waits for the connection timeout (10 s)
def test_cli_unreachable_scheduler_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("distributed", reason="dask.distributed not installed: pip install "
                                              "'ntk_mlft[distributed]' (the test extra has it)")
    from ntk_mlft.cli import main

    status = main(["generate", "--problem", "elliptic-rough", "--counts", "4,2",
                   "--out", str(tmp_path / "d"), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert status == 2 and "cannot reach the Dask scheduler" in err and "Traceback" not in err, err
