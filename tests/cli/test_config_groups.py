"""The solver, initial_condition, controller and scheme groups of ``conf/``.

Data configs compose their generator from these groups, and a quantity that two
configs must agree on (the frame interval, a grid size, the PDE an INSR model solves)
is written once and interpolated everywhere else: changing it in its one place
changes every config that depends on it.
"""

import math
import shutil

import h5py
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from physim.solvers import KortewegDeVries1D
from physim.solvers.schemes import ETDRK4, RK4, ForwardEuler, IMEXCrankNicolsonHeun
from physim.timestepping import CFLController, ConstantStep
from tests.cli.conftest import CONF, compose_train

DATA = sorted(path.stem for path in (CONF / "data").glob("*.yaml"))


def compose_generate(overrides, tmp_path):
    return compose_train(overrides, tmp_path, config_name="generate")


def test_data_configs_compose_their_generator_from_the_groups(tmp_path):
    generated = [
        name
        for name in DATA
        if compose_generate([f"data={name}"], tmp_path).data.get("generator")
    ]
    assert {"ns2d", "ns2d_paper", "ks1d", "kolmogorov2d_paper"} <= set(generated)
    for name in generated:
        raw = yaml.safe_load((CONF / "data" / f"{name}.yaml").read_text())
        # No generator part is inlined: each comes from its group (or the config the
        # data config extends), the data config sets only the values that differ.
        for part in ("pde", "initial_condition", "controller"):
            node = (raw.get("generator") or {}).get(part) or {}
            assert "_target_" not in node, (name, part)
        generator = compose_generate([f"data={name}"], tmp_path).data.generator
        for part, package in [
            ("pde", "physim.solvers."),
            ("initial_condition", "physim.solvers."),
            ("controller", "physim.timestepping."),
        ]:
            assert generator[part]._target_.startswith(package), (name, part)


def test_frame_interval_is_set_once_for_data_and_model(tmp_path):
    # The surrogates take their time per step from the data module at set-up
    # (tests/cli/test_evaluate.py checks the unit); no config repeats it.
    for experiment in ("ns2d", "ns2d_unet", "ks1d", "ks1d_refiner", "burgers1d"):
        cfg = compose_train([f"+experiment={experiment}"], tmp_path)
        assert cfg.model.output_interval is None, experiment
    # Burgers: the PI controller's step cap (one frame).
    cfg = compose_train(
        ["+experiment=burgers1d", "data.generator.output_interval=0.01"], tmp_path
    )
    assert cfg.data.generator.controller.dt_max == 0.01
    # Kolmogorov flow: the learned solver's step and the DNS controller's step cap.
    cfg = compose_train(
        ["+experiment=kolmogorov2d_tsm", "data.generator.output_interval=0.02"],
        tmp_path,
    )
    assert cfg.model.dt == 0.02 and cfg.data.generator.controller.dt_max == 0.02


def test_grid_and_physics_are_set_once(tmp_path):
    # The initial condition samples on the solver's grid.
    generator = compose_generate(
        ["data=ns2d", "data.generator.pde.num_points=128"], tmp_path
    ).data.generator
    assert generator.initial_condition.num_points == 128
    # Kolmogorov flow: the stored grid is the DNS's coarse grid and the learned
    # solver's grid; the initial velocity scale is the learned solver's CFL scale.
    cfg = compose_train(
        [
            "+experiment=kolmogorov2d_li",
            "data.generator.store_points=16",
            "data.generator.initial_condition.max_velocity=5.0",
        ],
        tmp_path,
    )
    assert cfg.data.generator.pde.coarse_points == 16
    assert cfg.model.solver.num_points == 16
    assert cfg.model.max_velocity == 5.0
    # INSR solves the PDE of its reference data; the pulse lives on its domain.
    cfg = compose_train(
        [
            "+experiment=advection1d_insr",
            "data.generator.pde.velocity=0.5",
            "data.generator.pde.domain=[-1.0,1.0]",
        ],
        tmp_path,
    )
    assert cfg.model.problem.velocity == 0.5
    assert list(cfg.model.problem.domain) == [-1.0, 1.0]
    assert list(cfg.data.generator.initial_condition.domain) == [-1.0, 1.0]


def test_paper_data_extend_their_cpu_config(tmp_path):
    # A change to the CPU config's physics reaches its _paper version.
    for cpu, paper, key in [
        ("ns2d", "ns2d_paper", "viscosity"),
        ("ks1d", "ks1d_paper", "domain_extent"),
        ("kolmogorov2d", "kolmogorov2d_paper", "viscosity"),
        ("advection1d_insr", "advection1d", "velocity"),
    ]:
        for name in (cpu, paper):
            cfg = compose_generate(
                [f"data={name}", f"data.generator.pde.{key}=0.125"], tmp_path
            )
            assert cfg.data.generator.pde[key] == 0.125
        # ... and their defaults list names the CPU config, not a copy of it.
        raw = yaml.safe_load((CONF / "data" / f"{paper}.yaml").read_text())
        assert cpu in raw["defaults"], paper


@pytest.mark.parametrize(
    ("name", "scheme"),
    [
        ("etdrk4", ETDRK4),
        ("imex_cn_heun", IMEXCrankNicolsonHeun),
        ("rk4", RK4),
        ("forward_euler", ForwardEuler),
    ],
)
def test_scheme_group_sets_the_pde_scheme(name, scheme, tmp_path):
    cfg = compose_generate(
        ["data=ks1d", f"+scheme@data.generator.pde.scheme={name}"], tmp_path
    )
    pde = instantiate(cfg.data.generator.pde, _convert_="all")
    assert type(pde.scheme) is scheme


def test_controller_group_swaps_the_controller(tmp_path):
    cfg = compose_generate(
        [
            "data=burgers1d",
            "controller@data.generator.controller=constant",
            "data.generator.controller.dt=0.005",
        ],
        tmp_path,
    )
    controller = instantiate(cfg.data.generator.controller)
    assert isinstance(controller, ConstantStep) and controller.dt == 0.005
    cfg = compose_generate(
        ["data=burgers1d", "controller@data.generator.controller=cfl"], tmp_path
    )
    controller = instantiate(cfg.data.generator.controller)
    assert isinstance(controller, CFLController)
    assert controller.dt_max == cfg.data.generator.output_interval


# docs/architecture.md, "a PDE": the solver config and the data config of the recipe.
RECIPE_SOLVER = """
_target_: physim.solvers.KortewegDeVries1D
num_points: 256
domain_extent: 50.0
"""
RECIPE_DATA = """
defaults:
  - /solver@generator.pde: kdv1d
  - /initial_condition@generator.initial_condition: random_sines
  - /controller@generator.controller: constant
  - _self_

root: ${paths.data_dir}/kdv1d
generator:
  _target_: physim.solvers.DatasetGenerator
  name: kdv1d
  controller: {dt: 0.01}
  num_trajectories: {train: 64, valid: 8, test: 8}
  num_frames: 20
  output_interval: 0.1
"""


def test_the_pde_recipe_of_docs_architecture_composes_and_generates(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "solver" / "kdv1d.yaml").write_text(RECIPE_SOLVER)
    (conf / "data" / "kdv1d.yaml").write_text(RECIPE_DATA)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("generate", overrides=["data=kdv1d"])
    generator = cfg.data.generator
    assert generator.initial_condition.num_points == 256  # the solver's grid
    generator.num_trajectories = {"train": 2, "valid": 1, "test": 1}
    generator.num_frames = 3
    generator.pde.num_points = 64
    generator = instantiate(generator, _convert_="all")
    assert isinstance(generator.pde, KortewegDeVries1D)
    generator(tmp_path / "data", progress=False)
    with h5py.File(tmp_path / "data" / "train.h5") as file:
        assert file.attrs["pde"] == "korteweg_de_vries_1d"
        assert file["fields"].shape[-1] == 64
    assert generator.is_complete(tmp_path / "data")


def test_kolmogorov_frame_interval_is_the_coarse_courant_step(tmp_path):
    # One stored frame per coarse step, jax-cfd's stable_time_step(7, 0.5) on the
    # stored grid: written once, so the paper's 64^2 grid halves it.
    for data, points in [("kolmogorov2d", 32), ("kolmogorov2d_paper", 64)]:
        generator = compose_generate([f"data={data}"], tmp_path).data.generator
        assert generator.store_points == points
        assert generator.output_interval == 0.5 * (2 * math.pi / points) / 7
    generator = compose_generate(
        ["data=kolmogorov2d", "data.generator.store_points=16"], tmp_path
    ).data.generator
    assert generator.output_interval == 0.5 * (2 * math.pi / 16) / 7


def test_pid_step_grid_is_a_setting_of_the_data(tmp_path):
    # Off by default without touching the fingerprint of existing data; set, it is
    # the controller's and a different dataset.
    def generator(*overrides):
        cfg = compose_generate(["data=burgers1d", *overrides], tmp_path)
        return instantiate(cfg.data.generator)

    plain = generator()
    assert plain.controller.dt_grid_ratio is None
    assert "dt_grid_ratio" not in repr(plain.controller)
    gridded = generator("data.generator.controller.dt_grid_ratio=1.0905")
    assert gridded.controller.dt_grid_ratio == 1.0905
    assert gridded.fingerprint != plain.fingerprint
    assert gridded.attributes()["controller_dt_grid_ratio"] == 1.0905
