"""KortewegDeVries1D (the few-line PDE of the recipe) against its soliton.

float64, single-threaded (tiny transforms; see tests/solvers/test_ks.py).
"""

import h5py
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from physim.solvers import KortewegDeVries1D, kdv_soliton
from physim.solvers.schemes import IMEXCrankNicolsonHeun
from physim.timestepping import ConstantStep, integrate

L, N, SPEED, CENTER = 50.0, 256, 2.0, 15.0

pytestmark = pytest.mark.usefixtures("single_thread")


def soliton_error(pde, dt, t1=5.0):
    x = pde.coordinates()["x"]
    u0 = kdv_soliton(x, 0.0, SPEED, CENTER, L)[None, None]
    sol = integrate(pde, ConstantStep(dt), pde.encode(u0), 0.0, t1, save_fn=pde.decode)
    exact = kdv_soliton(x, t1, SPEED, CENTER, L)
    final = sol.ys[0, -1, 0]
    return float((final - exact).norm() / exact.norm()), final, u0[0, 0]


def test_soliton_travels_unchanged_and_etdrk4_is_fourth_order():
    # The soliton moves 10 units (five widths); measured errors 3.5e-5, 1.7e-6,
    # 9.1e-8 at dt = 0.02, 0.01, 0.005 (slope 4.3), against a spatial error of 2e-9.
    pde = KortewegDeVries1D(N, L)
    steps = [0.02, 0.01, 0.005]
    errors = [soliton_error(pde, dt)[0] for dt in steps]
    order = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert 3.8 <= order <= 4.6, (errors, order)
    assert errors[-1] < 3e-7
    _, final, u0 = soliton_error(pde, 0.005)
    # Mass is conserved; the peak moved by c t = 10 units (51.2 grid points).
    torch.testing.assert_close(final.sum(), u0.sum(), rtol=1e-13, atol=0)
    x = pde.coordinates()["x"]
    assert float(x[final.argmax()] - x[u0.argmax()]) == pytest.approx(10.0, abs=0.2)


def test_kdv_under_the_imex_scheme_is_second_order():
    pde = KortewegDeVries1D(N, L, scheme=IMEXCrankNicolsonHeun)
    steps = [0.004, 0.002, 0.001]
    errors = [soliton_error(pde, dt, t1=2.0)[0] for dt in steps]
    order = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert 1.9 <= order <= 2.2, (errors, order)


def test_protocol_and_parameters():
    pde = KortewegDeVries1D(64, L, dtype="float32")
    assert pde.channel_names == ("u",) and pde.order == 4
    assert pde.grid_spacing == L / 64
    assert pde.parameters() == {
        "pde": "korteweg_de_vries_1d",
        "equation": "u_t + 6 u u_x + u_xxx = 0",
        "num_points": 64,
        "domain_extent": L,
        "time_scale": 1.0,
        "scheme": "etdrk4",
        "dealiasing": "2/3 rule, |m| < N/3",
        "dtype": "float32",
    }
    with pytest.raises(ValueError, match="num_points"):
        KortewegDeVries1D(63, L)


RECIPE = """
generator:
  _target_: physim.solvers.DatasetGenerator
  name: kdv1d
  pde:
    _target_: physim.solvers.KortewegDeVries1D
    num_points: 256
    domain_extent: 50.0
  initial_condition: {_target_: physim.solvers.RandomSines, num_points: 256}
  controller: {_target_: physim.timestepping.ConstantStep, dt: 0.01}
  num_trajectories: {train: 64, valid: 8, test: 8}
  num_frames: 20
  output_interval: 0.1
"""


def test_the_recipe_config_of_docs_architecture_generates_data(tmp_path):
    # docs/architecture.md, "a PDE": the new class plus its generator (shrunk), written
    # inline here; tests/cli/test_config_groups.py composes the recipe's config files.
    cfg = OmegaConf.create(RECIPE)
    cfg.generator.num_trajectories = {"train": 2, "valid": 1, "test": 1}
    cfg.generator.num_frames = 3
    generator = instantiate(cfg.generator)
    assert isinstance(generator.pde, KortewegDeVries1D)
    generator(tmp_path, progress=False)
    with h5py.File(tmp_path / "train.h5") as file:
        assert file.attrs["pde"] == "korteweg_de_vries_1d"
        assert file.attrs["scheme"] == "etdrk4"
    assert generator.is_complete(tmp_path)
