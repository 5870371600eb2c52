"""A trained model with CircuitActivation layers reloads from its state_dict alone.

Families simulated by the real ngspice; the model trained on the bundled digits; the reload runs in
a fresh Python process, in another folder, after the store has been deleted.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
from torch import nn

import circuitnn
from circuitnn.errors import ConfigError
from circuitnn.nn import (
    CircuitActivation,
    CircuitSpec,
    NoiseSpec,
    build_mlp,
    mlp_spec,
    reseed_noise,
    synthetic_family,
)
from circuitnn.train import TrainConfig, load_digits, train

FILES = ("model.pt", "x.pt", "result.pt")  # the reloading process's arguments

# The user's model code, as the reloading process runs it: no family, no store.
RELOAD = """
import sys
import torch
from torch import nn
from circuitnn.nn import CircuitActivation

model = nn.Sequential(
    nn.Linear(64, 16), CircuitActivation(None, 16),
    nn.Linear(16, 12), CircuitActivation(None, 12),
    nn.Linear(12, 10),
)
model.load_state_dict(torch.load(sys.argv[1], weights_only=True))
model.eval()
x = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    out = model(x)
    sigma = model[1].sigma(model[0](x))
torch.save({
    "out": out,
    "sigma": sigma,
    "modes": [model[1].mode, model[3].mode],
    "families": [model[1].family_name(), model[3].family_name()],
    "store_code": sorted(m for m in ("circuitnn.store", "h5py") if m in sys.modules),
}, sys.argv[3])
"""


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two small real families (mos_diffpair with noise, cmos_inverter) in a store of their own."""
    store = tmp_path_factory.mktemp("reload") / "families.h5"
    options = circuitnn.RunOptions(progress=False)
    return {
        "store": store,
        "diffpair": circuitnn.extract_family(
            "mos_diffpair", n=24, seed=2, store=store, options=options, noise=True
        ),
        "inverter": circuitnn.extract_family(
            "cmos_inverter", n=16, seed=0, store=store, options=options
        ),
    }


def _model(first: object, second: object) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(64, 16),
        CircuitActivation(first, 16, generator=0),
        nn.Linear(16, 12),
        CircuitActivation(second, 12, generator=1),
        nn.Linear(12, 10),
    )


def test_trained_model_reloads_in_a_fresh_process_without_the_store(families, tmp_path):
    torch.manual_seed(0)
    model = _model(families["diffpair"], families["inverter"])
    (x_train, y_train), (x_test, _) = load_digits(seed=0)
    history = train(model, (x_train, y_train), config=TrainConfig(epochs=4, lr=1e-2, seed=0))
    assert history.last["train_accuracy"] > 0.5, "the tiny model learned something"
    model[3].mode = "fitted"  # a setting changed after training travels too
    model.eval()
    x = torch.as_tensor(x_test[:200])
    with torch.no_grad():
        expected = model(x)
        expected_sigma = model[1].sigma(model[0](x))
    torch.save(model.state_dict(), tmp_path / "model.pt")
    torch.save(x, tmp_path / "x.pt")

    store = families["store"]
    shutil.copytree(store.parent, tmp_path / "kept-store")  # the module's other tests use it
    shutil.rmtree(store.parent)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        done = subprocess.run(
            [sys.executable, "-c", RELOAD, *(str(tmp_path / n) for n in FILES)],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.copytree(tmp_path / "kept-store", store.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    result = torch.load(tmp_path / "result.pt", weights_only=True)
    assert torch.equal(result["out"], expected), "outputs equal bit for bit"
    assert torch.equal(result["sigma"], expected_sigma), "the chip's noise tables travel too"
    assert result["modes"] == ["sampled", "fitted"]
    assert result["families"] == [model[1].family_name(), model[3].family_name()]
    assert "mos_diffpair" in result["families"][0] and "cmos_inverter" in result["families"][1]
    assert result["store_code"] == [], "reloading needs neither the store nor h5py"
    assert list(elsewhere.iterdir()) == []


def test_loading_into_a_layer_of_another_family_names_both(families):
    saved = _model(families["diffpair"], families["inverter"]).state_dict()
    wrong = _model(families["inverter"], families["inverter"])
    with pytest.raises(ConfigError) as error:
        wrong.load_state_dict(saved)
    message = str(error.value)
    assert "layer '1'" in message
    assert f"{families['diffpair'].key[:12]} (mos_diffpair)" in message
    assert f"{families['inverter'].key[:12]} (cmos_inverter)" in message
    # a layer built from the right family takes the saved chip and can still draw new ones
    right = _model(families["diffpair"], families["inverter"])
    right[1].resample(7)
    right.load_state_dict(saved)
    assert torch.equal(right[1].chip, saved["1.chip"])
    right[1].resample(8)


def test_builder_models_fill_from_a_state_dict(tmp_path):
    family = synthetic_family("tanh", n=60, seed=0)
    noise = NoiseSpec("circuit")
    trained = build_mlp(mlp_spec(8, (6, 5), 3, activation=CircuitSpec(family), noise=noise), 1)
    trained.act2.activation.mode = "nominal"
    torch.save(trained.state_dict(), tmp_path / "model.pt")
    empty = build_mlp(mlp_spec(8, (6, 5), 3, activation=CircuitSpec(None), noise=noise), 2)
    with pytest.raises(ConfigError, match="built without a family"):
        empty(torch.randn(2, 8))
    empty.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert empty.act2.activation.mode == "nominal"
    for model in (trained, empty):
        model.eval()
        reseed_noise(model, 3)
    x = torch.randn(16, 8)
    assert torch.equal(empty(x), trained(x))
    with pytest.raises(ConfigError, match="holds its chip but not the family's other instances"):
        empty.act1.activation.resample(0)


def test_bad_state_dicts_are_refused_naming_the_key():
    family = synthetic_family("tanh", n=20, seed=0)
    state = CircuitActivation(family, 4, generator=0).state_dict()
    with pytest.raises(ConfigError, match="has no 'identity'"):
        CircuitActivation(None, 4).load_state_dict(
            {k: v for k, v in state.items() if k != "identity"}
        )
    broken = dict(state, identity=torch.tensor([1, 2, 3], dtype=torch.uint8))
    with pytest.raises(ConfigError, match="identity does not hold UTF-8 JSON"):
        CircuitActivation(None, 4).load_state_dict(broken)
    with pytest.raises(ConfigError, match="identity must be a 1-D uint8 tensor"):
        CircuitActivation(None, 4).load_state_dict(dict(state, identity=torch.zeros(3)))
    knee = CircuitActivation(family, 4, scaling="knee")
    with pytest.raises(ConfigError, match="was saved with Scaling"):
        knee.load_state_dict(state)
    with pytest.raises(RuntimeError, match="size mismatch"):
        CircuitActivation(None, 5).load_state_dict(state)


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_an_empty_layer_moved_before_loading_keeps_its_device_and_dtype(device):
    family = synthetic_family("softplus", n=40, seed=1)
    original = CircuitActivation(family, 7, generator=2, mode="fitted").double()
    empty = CircuitActivation(None, 7).to(device=device, dtype=torch.float64)
    empty.load_state_dict(original.state_dict())
    assert empty.lines.device.type == device and empty.lines.dtype == torch.float64
    assert empty.table.dtype == torch.float64 and empty.identity.device.type == device
    x = torch.linspace(-4, 4, 70, dtype=torch.float64).reshape(10, 7)
    # bit for bit on the same device; another device's arithmetic may differ in the last bits
    exact = 0.0 if device == "cpu" else 1e-12
    torch.testing.assert_close(empty(x.to(device)).cpu(), original(x), rtol=0, atol=exact)


def test_loading_checks_name_the_layer_by_its_full_name_and_both_grids():
    """Loading a chip of another family names the layer by its full (dotted) name and says how
    to load it; a chip saved with another scaling names both scalings and both grids (a
    synthetic family of 201 points over [-1, 1] V: start -1 V, step 0.01 V); an empty layer
    refuses a state_dict whose table is missing or not 2-D, and fills from one of only 2 grid
    points (the fewest a curve has)."""
    family = synthetic_family("tanh", n=20, seed=0)
    other = synthetic_family("tanh", n=20, seed=1)
    state = CircuitActivation(family, 3, generator=0).state_dict()

    def nested(layer: nn.Module) -> nn.Module:
        return nn.Sequential(OrderedDict(hidden=nn.Sequential(OrderedDict(actX=layer))))

    def prefixed(state: dict) -> dict:
        return {f"hidden.actX.{key}": value for key, value in state.items()}

    with pytest.raises(ConfigError) as error:
        nested(CircuitActivation(other, 3)).load_state_dict(prefixed(state))
    assert str(error.value) == (
        f"cannot load the state_dict into layer 'hidden.actX': it holds a chip of family "
        f"{family.key[:12]} (synthetic_tanh), but this CircuitActivation was built from family "
        f"{other.key[:12]} (synthetic_tanh); build it from that family, or with family=None to "
        "take the family from the state_dict"
    )
    knee = CircuitActivation(family, 3, scaling="knee")
    with pytest.raises(ConfigError) as error:
        nested(knee).load_state_dict(prefixed(state))
    message = str(error.value)
    assert message.startswith("cannot load the state_dict into layer 'hidden.actX': family ")
    assert message.endswith(
        f"with {CircuitActivation(family, 3).scaling} on grid start -1 V, step 0.01 V, "
        f"this layer uses {knee.scaling} on start -1 V, step 0.01 V"
    )
    for table in (None, state["table"][0]):
        partial = {"0.identity": state["identity"]} | ({} if table is None else {"0.table": table})
        with pytest.raises(ConfigError, match=r"^0\.table must be a \(neurons, grid points >= 2\)"):
            nn.Sequential(CircuitActivation(None, 3)).load_state_dict(partial)
    two = CircuitActivation(synthetic_family("tanh", n=5, points=2), 3, generator=0)
    empty = CircuitActivation(None, 3)
    empty.load_state_dict(two.state_dict())
    x = torch.linspace(-2, 2, 12).reshape(4, 3)
    assert empty.points == 2 and torch.equal(empty(x), two(x))
