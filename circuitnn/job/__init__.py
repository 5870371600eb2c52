"""The main job (``circuitnn run``): families → analog network → robustness → one report page.

The top of the flow (see ``docs/architecture.md``). ``config`` holds the settings (light: no
torch), ``run`` the stages in order, ``stages_train`` and ``stages_eval`` the stages (torch),
``report`` and ``plots`` the report page and its pictures.
"""

from __future__ import annotations

from circuitnn._lazy import lazy_exports

_EXPORTS = {
    "MainJobConfig": "config",
    "config_from_dict": "config",
    "load_config": "config",
    "run_main_job": "run",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
