#!/usr/bin/env bash
# circuitnn's two everyday commands; both set up whatever is missing first (scripts/setup.sh).
#   bash dev.sh run [ARGS]    the main job on the built-in default (writes ./output/)
#   bash dev.sh test [ARGS]   the test suite
set -euo pipefail
cd "$(dirname "$0")"
command="${1:-}"
shift || true
case "$command" in
    run)  bash scripts/setup.sh && exec .venv/bin/circuitnn run "$@" ;;
    test) bash scripts/setup.sh && exec .venv/bin/python -m pytest "$@" ;;
    *)    echo "usage: bash dev.sh run|test [ARGS]" >&2; exit 2 ;;
esac
