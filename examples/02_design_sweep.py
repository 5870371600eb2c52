"""A designer's loop: how do transistor width and tail current trade gain, offset spread and power?

Run:  .venv/bin/python examples/02_design_sweep.py   (writes output/examples/)
Same as:  circuitnn sweep mos_diffpair --param w=1u,2u,4u,8u --param ibias=20u,40u --n 400
"""

from pathlib import Path

from circuitnn import RunOptions
from circuitnn.campaign.plots import plot_sweep
from circuitnn.campaign.sweep import sweep_families

out = Path("output/examples")
grid = {"w": [1e-6, 2e-6, 4e-6, 8e-6], "ibias": [20e-6, 40e-6]}
points = sweep_families(
    "mos_diffpair",
    grid,
    n=400,
    seed=0,
    store=out / "sweep.h5",
    options=RunOptions(jobs=2, progress=False),
)
rows = []
for point in points:
    summary = point.family.summary()
    rows.append({"point": point.point, "unit": "V", "summary": summary})
    print(
        f"w={point.point['w'] * 1e6:4.0f} µm  ibias={point.point['ibias'] * 1e6:3.0f} µA  "
        f"gain {summary['gain']['mean']:5.2f}  "
        f"offset σ {summary['midpoint']['std'] * 1e3:5.2f} mV  "
        f"power {summary['mean_power']['mean'] * 1e6:6.1f} µW"
    )
print(f"picture: {plot_sweep(rows, 'w', out / 'sweep_w.png')}")
