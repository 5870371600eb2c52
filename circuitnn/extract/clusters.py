"""The Dask and Ray clusters that :mod:`circuitnn.extract.parallel` runs worker processes on:
an existing one at a scheduler address, or a local one of this process; each kept for the
process' life (starting one costs seconds) and closed at exit or by :func:`shutdown`. Their
packages are optional (``circuitnn[dask]``, ``circuitnn[ray]``)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from circuitnn.errors import ConfigError

_PACKAGES = {"dask": ("distributed", "dask"), "ray": ("ray", "ray")}  # import name, pip extra


# the longest wait for an existing dask scheduler to answer (s)
DASK_CONNECT_SECONDS = 10.0


# dask clients and Ray pools, kept for the process' life (or until shutdown())
_CLIENTS: dict[tuple[str, str | None, int], Any] = {}


def require_package(backend: str) -> None:
    """:class:`ConfigError` with the pip extra to install when ``backend``'s package is
    missing."""
    module, extra = _PACKAGES[backend]
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"backend {backend!r} needs the {module!r} package, which is not installed: "
            f"pip install 'circuitnn[{extra}]'"
        )


# Dask settings for long campaigns. The client, in this process (the writer's), keeps its last
# 1000 messages to the scheduler by default, task arguments included: 50 bound its memory to a
# few chunks' parameters. A local cluster's scheduler lives in this process too, with the same
# kind of histories (messages, events, the last 100 graphs, an hour of system-monitor samples),
# so those are shortened as well; and its workers run without the statistical profiler, which
# samples the task's thread every 10 ms and competes with the chunk's Python work for the GIL.
# The periodic housekeeping of the local cluster's processes (event-loop health ticks every
# 20 ms, system and memory monitors, the cluster's repr) runs less often: on a machine whose
# cores the workers fill, it took CPU from them (the writer's process used about 0.25 CPU-s more
# per 2000-instance point with noise; measured on 2 cores).
_CLIENT_DASK = {"distributed.admin.low-level-log-length": 50}


_LOCAL_DASK = {
    **_CLIENT_DASK,
    "distributed.worker.profile.enabled": False,
    "distributed.diagnostics.computations.max-history": 4,
    "distributed.admin.system-monitor.log-length": 120,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.deploy.cluster-repr-interval": "10s",
}


def dask_client(scheduler: str | None, workers: int) -> Any:
    """A client of the cluster at ``scheduler``, or of a local cluster of ``workers`` processes
    (one thread each); kept for later calls and closed when the process exits."""
    key = ("dask", scheduler, 0 if scheduler else workers)
    client = _CLIENTS.get(key)
    if client is not None and client.status == "running":
        return client
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        client = _connect_dask(scheduler)
        threads = client.nthreads()
        crowded = {worker: n for worker, n in threads.items() if n > 1}
        if crowded:
            client.close()
            raise ConfigError(
                f"dask workers at {scheduler} run several threads each ({crowded}); libngspice "
                "keeps global state per process, so start workers with --nthreads 1"
            )
    else:
        try:
            with dask.config.set(_LOCAL_DASK):
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
                client = Client(cluster, set_as_default=False)
        except (RuntimeError, OSError, TimeoutError) as error:
            raise ConfigError(
                f"could not start a local dask cluster of {workers} worker processes: {error} "
                "(a script that starts one must guard its main code with "
                "`if __name__ == '__main__':`, since the workers import it)"
            ) from None
    _CLIENTS[key] = client
    return client


def _connect_dask(scheduler: str) -> Any:
    """A client of the dask scheduler at ``scheduler``; :class:`ConfigError` when it cannot be
    reached or does not answer within :data:`DASK_CONNECT_SECONDS`. (distributed's own timeout
    does not cover a scheduler that accepts the connection and never answers: the client is made
    in a thread of its own, abandoned if it does not return in time.)"""
    import dask
    from distributed import Client

    made: dict[str, Any] = {}

    def connect() -> None:
        try:
            with dask.config.set(_CLIENT_DASK):
                made["client"] = Client(
                    scheduler, timeout=DASK_CONNECT_SECONDS, set_as_default=False
                )
        except BaseException as error:  # handed to the caller below
            made["error"] = error

    thread = threading.Thread(target=connect, name="circuitnn-dask-connect", daemon=True)
    thread.start()
    thread.join(DASK_CONNECT_SECONDS + 1.0)
    if thread.is_alive():
        raise ConfigError(
            f"the dask scheduler at {scheduler} did not answer within {DASK_CONNECT_SECONDS:g} s "
            "(is a dask scheduler running there?)"
        )
    if "error" in made:
        error = made["error"]
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(f"cannot connect to the dask scheduler at {scheduler}: {reason}")
    return made["client"]


def start_ray(ray: Any, scheduler: str | None, workers: int) -> None:
    """Connect ``ray`` (Ray's module) to the cluster at ``scheduler``, or start a local one of
    ``workers`` CPUs, unless it is already running."""
    if ray.is_initialized():
        return
    settings: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
    }
    if scheduler is not None:
        try:
            ray.init(address=scheduler, **settings)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ConfigError(
                f"cannot connect to the Ray cluster at {scheduler}: {error}"
            ) from None
    else:
        ray.init(num_cpus=workers, **settings)


def kept_ray_pool(scheduler: str | None, total: int, make: Callable[[], Any]) -> Any:
    """The pool of ``total`` Ray actors (worker processes) on ``scheduler``'s cluster, made by
    ``make`` on first use and kept for later calls (starting one costs seconds)."""
    key = ("ray", scheduler, total)
    if key not in _CLIENTS:
        _CLIENTS[key] = make()
    return _CLIENTS[key]


def shutdown(backend: str | None = None) -> None:
    """Close the dask clients and local clusters and the Ray pools and session this process
    started (only those of ``backend`` if given)."""
    for key, client in list(_CLIENTS.items()):
        if backend is not None and key[0] != backend:
            continue
        del _CLIENTS[key]
        if key[0] == "ray":
            with contextlib.suppress(Exception):
                client.__exit__(None, None, None)
            continue
        cluster = getattr(client, "cluster", None)
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
    import sys

    ray = sys.modules.get("ray")
    if backend in (None, "ray") and ray is not None and ray.is_initialized():
        ray.shutdown()


atexit.register(shutdown)
