#!/usr/bin/env bash
# circuitnn's two everyday commands; both set up whatever is missing first (scripts/setup.sh).
#   bash dev.sh run [ARGS]    the main job on the built-in default (writes ./output/)
#   bash dev.sh test [ARGS]   the test suite
#   bash dev.sh mutants [NAMES]  mutation testing of the pure-Python core against the fast tests
#                             (mutmut; modules and tests in pyproject.toml [tool.mutmut]; slow:
#                             hours on 2 cores the first time, then only what changed; verdicts
#                             kept in tests/mutation_record/), then the score per module;
#                             MUTANT_JOBS sets the parallel children (default 2)
set -euo pipefail
cd "$(dirname "$0")"
command="${1:-}"
shift || true
case "$command" in
    run)  bash scripts/setup.sh && exec .venv/bin/circuitnn run "$@" ;;
    test) bash scripts/setup.sh && exec .venv/bin/python -m pytest "$@" ;;
    mutants)
        bash scripts/setup.sh
        # lowest priority: it runs for hours on a machine others share; ngspice's runs are
        # recorded and replayed for the same input (tests/ngspice_replay.py; empty: off)
        export CIRCUITNN_NGSPICE_REPLAY="${CIRCUITNN_NGSPICE_REPLAY-$PWD/mutants/ngspice-replay}"
        # the kernels that mutants of circuitnn/nn/kernel.py build stay out of the user's cache
        export CIRCUITNN_KERNEL_DIR="${CIRCUITNN_KERNEL_DIR-$PWD/mutants/kernels}"
        .venv/bin/python scripts/mutation_record.py restore  # verdicts kept in tests/mutation_record/
        # mutmut copies a file that is not Python (the kernel's C++) only where mutants/ lacks it
        if [ -d mutants/circuitnn ]; then
            find circuitnn -type f ! -name '*.py' ! -path '*/__pycache__/*' \
                -exec cp --parents {} mutants/ \;
        fi
        nice -n 19 .venv/bin/mutmut run --max-children "${MUTANT_JOBS:-2}" "$@" || true  # survivors: exit 1
        .venv/bin/python scripts/mutation_record.py save
        exec .venv/bin/python scripts/mutation_score.py ;;
    *)    echo "usage: bash dev.sh run|test|mutants [ARGS]" >&2; exit 2 ;;
esac
