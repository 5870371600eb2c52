"""What the simulation commands print: a neuron (``circuitnn neurons``), how a family ran
(ngspice's warnings, instances run alone, failures) and its descriptors and analyses
(``circuitnn extract``, ``circuitnn show``)."""

from __future__ import annotations

import json
from typing import Any


def print_neuron(name: str, spec: Any) -> None:
    """A neuron's description, ports, sweep, output, parameters, variations and corners."""
    print(f"{name}: {spec.description}")
    print(f"  ports: {_ports_text(spec)}")
    sweep = spec.sweep
    kind = "differential" if spec.ports.differential_input else "single-ended"
    print(
        f"  input {kind} {sweep.start:g}…{sweep.stop:g} V ({sweep.points} points); "
        f"output {spec.output.quantity} [{spec.output.unit}]; "
        f"supplies {spec.ports.supplies or 'none'}; {spec.temperature:g} °C"
    )
    params = ", ".join(f"{k}={v:.6g}" for k, v in spec.parameters.items())
    print(f"  parameters: {params}")
    for variation in spec.variations:
        parts = []
        for scope, dist in (("global", variation.global_), ("local", variation.local)):
            if dist is not None:
                parts.append(f"{scope} {_distribution_text(dist)}")
        print(f"  varies {variation.parameter}: {'; '.join(parts)}")
    if spec.corners:
        print(f"  corners: {', '.join(spec.corners)}")


def _ports_text(spec: Any) -> str:
    """The subckt's ports in order, each with its role (input, output, supply V, ground, bias V)."""
    ports = spec.ports
    roles = []
    for port in spec.subckt.ports:
        if port in ports.input:
            role = "input" if len(ports.input) == 1 else f"input {'+-'[ports.input.index(port)]}"
        elif port in ports.output:
            role = (
                "output" if len(ports.output) == 1 else f"output {'+-'[ports.output.index(port)]}"
            )
        elif port in ports.supplies:
            role = f"supply {ports.supplies[port]:g} V"
        elif port in ports.ground:
            role = "ground"
        else:
            role = f"bias {ports.bias[port]:g} V"
        roles.append(f"{port} ({role})")
    return ", ".join(roles)


def _distribution_text(dist: Any) -> str:
    """A variation's distribution and its σ (absolute, relative or Pelgrom)."""
    if dist.pelgrom is not None:
        return f"{dist.distribution} σ = {dist.pelgrom:g}/√({dist.area[0]}·{dist.area[1]})"
    if dist.relative is not None:
        return f"{dist.distribution} σ = {dist.relative:g} relative"
    return f"{dist.distribution} σ = {dist.sigma:g}"


def print_run(family: Any, shown: int = 3) -> None:
    """How the family ran: ngspice's warnings, instances simulated alone and the self-check,
    failures (their count, kinds and first reasons)."""
    import numpy as np

    attrs = family.attrs
    for warning in json.loads(str(attrs.get("ngspice_warnings", "[]"))):
        print(f"  ngspice warns about the netlist: {warning}")
    if family.run_alone is not None and "self_check_instances" in attrs:
        codes = np.bincount(family.run_alone, minlength=5)
        print(
            f"  simulated alone: {int(np.count_nonzero(family.run_alone))} of {family.n} "
            f"(self-check {codes[2]}, jumping curves {codes[3]}, chunks off their self-check "
            f"{codes[4]}); self-check: {attrs['self_check_instances']} instance(s), largest "
            f"deviation {float(attrs['self_check_max_deviation']):.3g} {family.output_unit} "
            f"({float(attrs['self_check_max_ratio']):.2g} × the tolerance)"
        )
    if attrs.get("nominal_failure"):
        print(f"  the nominal instance failed: {attrs['nominal_failure']}")
    failed = family.failed
    if len(failed) == 0:
        return
    retry = int(np.count_nonzero(family.status == 3))
    later = (
        f", {retry} by a timeout or crash of ngspice (simulated again next run)" if retry else ""
    )
    print(f"  {len(failed)} of {family.n} instances failed{later}; first reasons:")
    for index in failed[:shown]:
        print(f"    instance {index}: {family.reasons[index]}")


def _print_analyses(family: Any) -> None:
    """A family's noise σ_out per bias and its speed (bandwidth, settling time, energy)."""
    import numpy as np

    if family.noise is not None:
        noise = family.noise
        ok = noise.status == 1
        print(
            f"  noise ({noise.key}): {int(ok.sum())} ok, σ_out over {noise.bandwidth:g} Hz "
            f"[{family.output_unit} RMS]:"
        )
        for bias, column in zip(noise.bias, noise.sigma.T, strict=True):
            values = column[ok]
            print(
                f"    x = {bias:+8.4g} V   mean {np.mean(values):10.4g}   "
                f"std {np.std(values):10.4g}"
            )
    if family.speed is not None:
        speed = family.speed
        ok = speed.status == 1
        for name, unit in (("bandwidth", "Hz"), ("settling_time", "s"), ("energy", "J")):
            values = getattr(speed, name)[ok]
            values = values[np.isfinite(values)]
            if len(values):
                print(
                    f"  {name:14s} mean {np.mean(values):10.4g} {unit:2s}  "
                    f"std {np.std(values):10.4g}  ({len(values)} instances)"
                )


def print_summary(family: Any) -> None:
    """A family's descriptors (mean, std, min, max) and its analyses."""
    print(f"  {'descriptor':12s} {'mean':>12s} {'std':>11s} {'min':>11s} {'max':>11s}")
    for name, stats in family.summary().items():
        print(
            f"  {name:12s} {stats['mean']:12.5g} {stats['std']:11.4g} "
            f"{stats['min']:11.4g} {stats['max']:11.4g}"
        )
    _print_analyses(family)
