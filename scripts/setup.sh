#!/usr/bin/env bash
# Set up everything circuitnn needs, idempotently (a second run takes a second or two):
#   1. ngspice + libngspice from Debian/Ubuntu packages, when missing;
#   2. a virtual environment in .venv (Python >= 3.11; override with PYTHON=/path/to/python3);
#   3. the CPU build of PyTorch, pinned, before anything can pull a CUDA build;
#   4. circuitnn in editable mode with its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_PIN="torch==2.13.0"
say() { printf '[setup] %s\n' "$*"; }

have_ngspice() {
    command -v ngspice >/dev/null 2>&1 || return 1
    case "$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null)" in
        *libngspice.so*) return 0 ;;
        *) return 1 ;;
    esac
}
if ! have_ngspice; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        say "installing ngspice and libngspice (Debian packages)"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ngspice libngspice0 libngspice0-dev >/dev/null
    else
        say "ngspice is missing and apt-get is not available: install ngspice and libngspice yourself" >&2
        exit 1
    fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        say "circuitnn needs Python >= 3.11 (found $("$python" --version 2>&1)); set PYTHON=..." >&2
        exit 1
    }
    say "creating .venv"
    "$python" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

stamp=.venv/.circuitnn-setup
wanted="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
installed() { .venv/bin/python -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in sys.argv[1:]))" "$@"; }
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && installed circuitnn torch; then
    exit 0
fi
if ! installed torch; then
    say "installing $TORCH_PIN (CPU build)"
    pip install "$TORCH_PIN"
fi
say "installing circuitnn (editable) with its test tools"
pip install -e ".[dev,torch]"
echo "$wanted" > "$stamp"
say "ready: $(.venv/bin/python -c 'import circuitnn, torch; print("circuitnn", circuitnn.__version__, "· torch", torch.__version__)') · $(ngspice -v 2>/dev/null | grep -o 'ngspice-[0-9.]*' | head -1)"
