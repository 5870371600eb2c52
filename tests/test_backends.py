"""The same families on every joblib backend: loky, a real local Dask cluster, and Ray.

The Dask cluster is real: a scheduler and 2 worker processes with 1 thread each (libngspice keeps
global state per process), started once for this module; so is the Ray instance (2 CPUs, no
dashboard, no usage statistics: it runs offline on a 2-core machine in about 15 s). Families must
equal the loky backend's bit for bit for the same seed, DC and noise alike. Both backends are in
the dev extra; their tests skip only where the package is missing.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import pickle
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_same_family, options

import circuitnn.extract.noise
from circuitnn.cli import main
from circuitnn.errors import ConfigError
from circuitnn.extract import clusters, parallel
from circuitnn.extract.options import RunOptions
from circuitnn.extract.pipeline import extract_family
from circuitnn.family import Family
from circuitnn.spice.analyses import NoiseAnalysis
from circuitnn.store import Store

N, SEED, CHUNK = 60, 5, 20
NOISE = NoiseAnalysis(bias_points=3, fmin=10.0, fmax=1e8, points_per_decade=3, bandwidth=1e6)


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[object]:
    """A local Dask cluster of 2 worker processes (one thread each), closed after the module."""
    pytest.importorskip(
        "distributed", reason="the dask backend needs: pip install 'circuitnn[dask]'"
    )
    yield clusters.dask_client(None, 2)
    clusters.shutdown()


@pytest.fixture(scope="module")
def ray_session() -> Iterator[object]:
    """Ray's module, with a local instance started on first use and shut down after the module.

    Ray's usage statistics are switched off (the machine may have no internet); the instance is
    the one circuitnn starts for ``--jobs 2`` (2 CPUs, no dashboard).
    """
    ray = pytest.importorskip(
        "ray", reason="ray is not installed (optional: pip install 'circuitnn[ray]', see README)"
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")  # read by the processes ray.init starts
        try:
            yield ray
        finally:
            clusters.shutdown("ray")
    assert not ray.is_initialized()
    assert not any(key[0] == "ray" for key in clusters._CLIENTS)


@pytest.fixture(scope="module")
def loky_families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Family]:
    """The reference: diode_relu (DC) and with noise, on loky with 2 worker processes."""
    store = tmp_path_factory.mktemp("loky") / "families.h5"
    run = options(chunk_size=CHUNK, jobs=2)
    return {
        "dc": extract_family("diode_relu", n=N, seed=SEED, store=store, options=run),
        "noise": extract_family(
            "diode_relu", n=40, seed=SEED + 1, store=store, options=run, noise=NOISE
        ),
    }


def _assert_same_noise(a: Family, b: Family) -> None:
    assert a.noise is not None and b.noise is not None
    assert a.noise.key == b.noise.key
    for name in ("bias", "frequency", "psd", "input_psd", "sigma", "white", "flicker", "alpha"):
        np.testing.assert_array_equal(getattr(a.noise, name), getattr(b.noise, name), name)
    np.testing.assert_array_equal(a.noise.status, b.noise.status)


def test_dask_workers_are_separate_single_threaded_processes(dask_cluster: object) -> None:
    threads = dask_cluster.nthreads()  # type: ignore[attr-defined]
    assert sorted(threads.values()) == [1, 1]
    pids = {pid for _, pid in parallel.run_tasks(os.getpid, [()] * 8, jobs=2, backend="dask")}
    assert len(pids) == 2 and os.getpid() not in pids


class _Cycle:
    """An object in a reference cycle with itself: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_garbage_collects_what_the_run_made_and_leaves_what_came_before() -> None:
    """While tasks run, the objects made before are frozen (a collection does not scan them);
    cycles made during the run are collected when the budget is due; afterwards nothing stays
    frozen. Without the freeze the old cycle would go at the first collection; without the
    unfreeze it would never go. Objects a process froze itself stay frozen."""
    was_enabled = gc.isenabled()
    gc.disable()  # no automatic collection in between
    try:
        gc.collect()
        old = weakref.ref(_Cycle())
        with parallel._Garbage(enabled=True) as garbage:
            assert gc.get_freeze_count() > 0
            new = weakref.ref(_Cycle())
            garbage.add(np.zeros(3))
            garbage.collect_if_due()  # 24 bytes: under the budget, nothing collected
            assert new() is not None
            garbage.collect_if_due(force=True)
            assert new() is None and old() is not None
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert old() is None
        with parallel._Garbage(enabled=False):  # loky: no cycles to collect, nothing frozen
            assert gc.get_freeze_count() == 0
        mine = weakref.ref(_Cycle())
        gc.freeze()  # a process that froze its own objects: they stay frozen after the run
        with parallel._Garbage(enabled=True):
            pass
        gc.collect()  # (the count of frozen objects moves as other threads free theirs)
        assert gc.get_freeze_count() > 0 and mine() is not None
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def test_dask_results_handed_on_are_freed_by_the_end_of_the_run(dask_cluster: object) -> None:
    """joblib's dask backend keeps each result in a reference cycle; every result the caller
    has let go of is freed by the time the run ends (the budgeted collections run on objects
    made during the run, the rest frozen)."""
    refs = []
    for _, result in parallel.run_tasks(np.ones, [(1000,)] * 6, jobs=2, backend="dask"):
        refs.append(weakref.ref(result))
        del result
    assert refs and all(ref() is None for ref in refs)
    assert gc.get_freeze_count() == 0


def test_unreachable_dask_scheduler_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed")
    with socket.socket() as probe:  # a port of this machine that nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setattr(clusters, "DASK_CONNECT_SECONDS", 1.0)
    with pytest.raises(ConfigError, match=f"cannot connect to the dask scheduler at {address}"):
        list(parallel.run_tasks(os.getpid, [()] * 2, jobs=2, backend="dask", scheduler=address))
    assert not any(key[1] == address for key in clusters._CLIENTS)


def test_dask_workers_with_several_threads_are_refused() -> None:
    """libngspice keeps global state per process: a cluster whose workers run several threads
    each is refused with the reason, before any task runs."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        address = cluster.scheduler_address
        with pytest.raises(ConfigError, match=r"run several threads each .*--nthreads 1"):
            list(parallel.run_tasks(os.getpid, [()] * 2, backend="dask", scheduler=address))
    assert not any(key[1] == address for key in clusters._CLIENTS)


# a user's script without a main guard; the spawned workers re-run it, and there it fails uncaught
# (as in any such script), which kills them while they import it
NO_MAIN_GUARD = """
import multiprocessing
import os
from circuitnn.errors import ConfigError
from circuitnn.extract import clusters, parallel
try:
    list(parallel.run_tasks(os.getpid, [()] * 2, jobs=2, backend="dask"))
except ConfigError as error:
    if multiprocessing.parent_process() is not None:
        raise
    print("kept:", ("dask", None, 2) in clusters._CLIENTS, "|", error, flush=True)
"""


def test_local_dask_cluster_that_cannot_start_is_a_config_error(tmp_path: Path) -> None:
    """A real failure: a script without ``if __name__ == '__main__':`` starts a local cluster.
    Its worker processes are spawned, re-run the script while bootstrapping and die on
    multiprocessing's RuntimeError; the script gets a ConfigError naming the likely cause, and
    no client is kept. (The same cluster from a guarded main module starts: ``dask_cluster``.)"""
    pytest.importorskip("distributed")
    script = tmp_path / "no_main_guard.py"
    script.write_text(NO_MAIN_GUARD)
    with subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err  # the script's own error was a ConfigError
    assert out.startswith("kept: False | could not start a local dask cluster of 2 worker"), out
    assert "guard its main code with `if __name__ == '__main__':`" in out
    assert "bootstrapping phase" in err  # what the spawned workers died of


def test_dask_family_equals_loky_bit_for_bit(
    dask_cluster: object, loky_families: dict[str, Family], tmp_path: Path
) -> None:
    _assert_backend_equals_loky("dask", tmp_path / "dask.h5", loky_families)


def test_dask_noise_tasks_carry_values_at_the_biases_not_the_curves(
    dask_cluster: object,
    loky_families: dict[str, Family],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writer's dask client and the local cluster's scheduler keep their last 50 messages,
    tasks included: a noise task must not carry its chunk's N×K DC curves (bench_campaign's
    writer peaked 25 MiB higher when it did), only the N×B values the workers use."""
    sent: list[tuple[str, tuple[object, ...]]] = []
    stream = circuitnn.extract.noise.stream_journaled

    def recorded(function: object, tasks: list, *args: object, **kwargs: object) -> object:
        sent.extend(tasks)
        return stream(function, tasks, *args, **kwargs)

    monkeypatch.setattr(circuitnn.extract.noise, "stream_journaled", recorded)
    run = options(chunk_size=CHUNK, jobs=2, backend="dask")
    store = tmp_path / "dask.h5"
    noisy = extract_family("diode_relu", n=40, seed=SEED + 1, store=store, options=run, noise=NOISE)
    _assert_same_noise(noisy, loky_families["noise"])  # held and checked as before
    assert len(sent) == 40 // CHUNK
    curves_bytes = CHUNK * noisy.curves.shape[1] * noisy.curves.itemsize  # 20 × 301 × 8 B
    for _, task in sent:
        assert len(pickle.dumps(task)) < curves_bytes / 2, len(pickle.dumps(task))


def test_dask_through_a_scheduler_address(
    dask_cluster: object, loky_families: dict[str, Family]
) -> None:
    address = dask_cluster.scheduler.address  # type: ignore[attr-defined]
    run = options(chunk_size=CHUNK, jobs=2, backend="dask", scheduler=address)
    assert_same_family(
        extract_family("diode_relu", n=N, seed=SEED, options=run), loky_families["dc"]
    )


def test_cli_backend_option(
    dask_cluster: object, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = tmp_path / "cli.h5"
    args = ["extract", "diode_relu", "--n", "20", "--chunk-size", "10", "--store", str(store)]
    assert main([*args, "--jobs", "2", "--backend", "dask", "--quiet"]) == 0
    assert "20 instances, 0 failed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_status:
        main([*args, "--backend", "spark"])
    assert exit_status.value.code == 2
    assert "invalid choice: 'spark'" in capsys.readouterr().err
    assert main([*args, "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "scheduler address needs backend dask or ray" in capsys.readouterr().err


def test_unreachable_ray_cluster_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs before this module starts its Ray instance (Ray connects once per process)."""
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    # "auto": the Ray instance running on this machine, and none is
    with pytest.raises(ConfigError, match="cannot connect to the Ray cluster at auto"):
        list(parallel.run_tasks(os.getpid, [()] * 2, backend="ray", scheduler="auto"))
    assert not ray.is_initialized()


def test_ray_family_equals_loky_bit_for_bit(
    ray_session: object, loky_families: dict[str, Family], tmp_path: Path
) -> None:
    _assert_backend_equals_loky("ray", tmp_path / "ray.h5", loky_families)
    assert ray_session.is_initialized()  # type: ignore[attr-defined]
    assert ray_session.cluster_resources()["CPU"] == 2  # type: ignore[attr-defined]


def test_ray_workers_are_separate_processes(ray_session: object) -> None:
    def slow_pid() -> int:  # a local function: pickled by value, so the workers need no import
        time.sleep(0.2)  # long enough that one worker cannot take every task
        return os.getpid()

    pids = {pid for _, pid in parallel.run_tasks(slow_pid, [()] * 8, jobs=2, backend="ray")}
    assert len(pids) == 2 and os.getpid() not in pids


@pytest.mark.parametrize(("backend", "extra"), [("dask", "dask"), ("ray", "ray")])
def test_missing_backend_package_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, backend: str, extra: str
) -> None:
    real = importlib.util.find_spec
    missing = {"dask": "distributed", "ray": "ray"}[backend]
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a)
    )
    with pytest.raises(ConfigError, match=rf"pip install 'circuitnn\[{extra}\]'"):
        list(parallel.run_tasks(os.getpid, [()], jobs=2, backend=backend))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backend": "spark"}, "backend 'spark' must be one of loky, dask, ray"),
        ({"scheduler": "tcp://host:8786"}, "scheduler address needs backend dask or ray"),
        ({"backend": "dask", "scheduler": " "}, "scheduler must be an address"),
    ],
)
def test_bad_backend_settings_are_config_errors(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunOptions(**settings)


def _assert_backend_equals_loky(
    backend: str, store: Path, loky_families: dict[str, Family]
) -> None:
    """A DC family and a noise family extracted on ``backend`` into ``store`` equal loky's."""
    run = options(chunk_size=CHUNK, jobs=2, backend=backend)
    dc = extract_family("diode_relu", n=N, seed=SEED, store=store, options=run)
    assert dc.ok.all()
    assert_same_family(dc, loky_families["dc"])
    noisy = extract_family("diode_relu", n=40, seed=SEED + 1, store=store, options=run, noise=NOISE)
    assert_same_family(noisy, loky_families["noise"])
    _assert_same_noise(noisy, loky_families["noise"])
    assert sorted(Store(store).keys()) == sorted(f.key for f in loky_families.values())


# What a chunk worker must not import to unpickle its task: each of these costs a worker process
# tenths of a second at start (scipy.stats alone about half a second), every pool start.
WORKER_DEFERRED = ("scipy.stats", "scipy.optimize", "torch", "matplotlib", "pandas", "optuna")


def test_a_chunk_worker_starts_without_heavy_libraries() -> None:
    code = (
        "import sys, json, circuitnn.extract.dc_chunk, circuitnn.extract.analysis_chunks; "
        f"print(json.dumps([m for m in {WORKER_DEFERRED!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"a chunk worker loaded {done.stdout.strip()}"


def _omp_wait_policy(_: int) -> str | None:
    return os.environ.get("OMP_WAIT_POLICY")


def test_workers_let_ngspice_threads_wait_passively() -> None:
    """ngspice's OpenMP threads (BSIM3/BSIM4 devices) spin while idle; in worker processes, one
    per core, they wait passively (bench_pdk: two sky130 workers 4x faster); a run in this
    process keeps the default."""
    results = dict(parallel.run_tasks(_omp_wait_policy, [(0,), (1,), (2,)], jobs=2))
    assert set(results.values()) == {"PASSIVE"}
    assert dict(parallel.run_tasks(_omp_wait_policy, [(0,)], jobs=1)) == {
        0: os.environ.get("OMP_WAIT_POLICY")
    }
