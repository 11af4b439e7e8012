"""RolloutReport: netCDF round trip, metrics = metric functions, NaN handling."""

import io
import json
import math

import numpy as np
import pytest
import torch
import xarray as xr
from rich.console import Console

from physim.rollout import RolloutReport
from physim.rollout import metrics as M

DTYPE = torch.float64
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_data(n=4, t=6, c=2, space=(8, 8), seed=0):
    gen = torch.Generator().manual_seed(seed)
    target = torch.randn(n, t, c, *space, generator=gen, dtype=DTYPE)
    # Error that grows with the step, so correlation decays.
    growth = torch.linspace(0.05, 1.5, t, dtype=DTYPE).reshape(
        1, t, *([1] * (1 + len(space)))
    )
    pred = target + growth * torch.randn(n, t, c, *space, generator=gen, dtype=DTYPE)
    baseline = M.persistence_baseline(target[:, 0] + 0.3, t)
    names = ("x", "y", "z")[: len(space)]
    coords = {d: (np.arange(s) + 0.5) / s for d, s in zip(names, space, strict=True)}
    return {
        "pred": pred,
        "target": target,
        "times": 0.5 * np.arange(1, t + 1),
        "coords": coords,
        "channel_names": [f"u{i}" for i in range(c)],
        "baseline": baseline,
    }


def make_report(**overrides):
    data = make_data(
        **{k: overrides.pop(k) for k in ("n", "t", "c", "space") if k in overrides}
    )
    data.update(overrides)
    return RolloutReport(
        data.pop("pred"), data.pop("target"), correlation_threshold=0.8, **data
    ), data


def test_metrics_equal_the_metric_functions():
    data = make_data()
    report = RolloutReport(
        data["pred"],
        data["target"],
        times=data["times"],
        coords=data["coords"],
        channel_names=data["channel_names"],
        baseline=data["baseline"],
        correlation_threshold=0.8,
    )
    pred, target = data["pred"], data["target"]
    rel = M.relative_l2(pred, target)
    corr = M.pearson_correlation(pred, target)
    base = M.relative_l2(data["baseline"], target).mean().item()
    summary = report.metrics()
    expected = {
        "num_trajectories": 4,
        "num_nonfinite": 0,
        "first_nonfinite_step": -1,
        "rel_l2_mean": rel.mean().item(),
        "rel_l2_first_half": rel[:, :3].mean().item(),
        "rel_l2_final": rel[:, -1].mean().item(),
        "rel_l2_full": M.trajectory_relative_l2(pred, target).mean().item(),
        "correlation_time_batch": M.batch_correlation_time(corr, 0.8, 0.5).item(),
        "correlation_time_mean": M.correlation_time(corr, 0.8, 0.5).mean().item(),
        "correlation_threshold": 0.8,
        "baseline_rel_l2_mean": base,
        "baseline_ratio": base / rel.mean().item(),
        # Nothing diverged: the finite-only numbers equal the headline ones.
        "rel_l2_mean_finite": rel.mean().item(),
        "rel_l2_full_finite": M.trajectory_relative_l2(pred, target).mean().item(),
        "mse_mean_finite": M.mse(pred, target).mean().item(),
        "correlation_time_batch_finite": M.batch_correlation_time(
            corr, 0.8, 0.5
        ).item(),
        "baseline_ratio_finite": base / rel.mean().item(),
    }
    assert summary.keys() == expected.keys()
    for key, value in expected.items():
        assert summary[key] == pytest.approx(value, rel=1e-12), key
    # The crafted error makes the correlation drop inside the rollout, not at the ends.
    assert 0 < summary["correlation_time_batch"] < 3.0

    per_step = report.per_step()
    np.testing.assert_allclose(per_step["relative_l2"], rel.mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(per_step["correlation_sample"], corr.numpy(), rtol=1e-12)
    assert per_step["mse_sample"].dims == ("sample", "time")
    np.testing.assert_array_equal(per_step["step"], np.arange(6))


def test_netcdf_round_trip_keeps_values_dims_and_coords(tmp_path):
    report, data = make_report()
    path = report.to_netcdf(tmp_path / "out" / "rollout.nc")
    assert path == tmp_path / "out" / "rollout.nc"
    assert [p.name for p in path.parent.iterdir()] == ["rollout.nc"]  # no temp left
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        for name in ("prediction", "truth"):
            assert ds[name].dims == ("sample", "time", "channel", "x", "y")
        np.testing.assert_array_equal(ds["prediction"].values, report.pred.numpy())
        np.testing.assert_array_equal(ds["truth"].values, report.target.numpy())
        np.testing.assert_array_equal(ds["time"].values, data["times"])
        np.testing.assert_array_equal(ds["x"].values, data["coords"]["x"])
        assert list(ds["channel"].values) == ["u0", "u1"]
        per_step = report.per_step()
        for name in ("mse", "relative_l2", "correlation", "relative_l2_sample"):
            np.testing.assert_array_equal(ds[name].values, per_step[name].values)
        spectrum = M.error_spectrum(report.pred, report.target).numpy()
        assert ds["error_spectrum"].dims == ("sample", "time", "wavenumber")
        np.testing.assert_allclose(ds["error_spectrum"].values, spectrum, rtol=1e-12)
        assert ds.attrs["summary_rel_l2_mean"] == pytest.approx(
            report.metrics()["rel_l2_mean"]
        )
        assert not any(d.startswith("phony_dim") for d in ds.dims)


def test_a_diverged_trajectory_is_counted_in_the_headline_and_left_out_of_finite(
    tmp_path,
):
    data = make_data(n=4, t=6)
    k = 2
    pred = data["pred"].clone()
    pred[1, k:, 0, 3, 3] = math.nan
    report = RolloutReport(
        pred,
        data["target"],
        times=data["times"],
        coords=data["coords"],
        channel_names=data["channel_names"],
        baseline=data["baseline"],
    )
    summary = report.metrics()
    assert summary["num_nonfinite"] == 1
    assert summary["first_nonfinite_step"] == k
    # The headline: every trajectory; trajectory 1 counts its own error before step
    # k and max(persistence, 1) from k on.
    rel = M.relative_l2(data["pred"], data["target"])
    base = M.relative_l2(data["baseline"], data["target"])
    counted = rel.clone()
    counted[1, k:] = base[1, k:].clamp_min(1.0)
    assert summary["rel_l2_mean"] == pytest.approx(counted.mean().item(), rel=1e-12)
    assert summary["rel_l2_final"] == pytest.approx(
        counted[:, -1].mean().item(), rel=1e-12
    )
    assert summary["baseline_ratio"] == pytest.approx(
        base.mean().item() / counted.mean().item(), rel=1e-12
    )
    # Finite-only numbers leave it out.
    keep = [0, 2, 3]
    assert summary["rel_l2_mean_finite"] == pytest.approx(
        rel[keep].mean().item(), rel=1e-12
    )
    assert summary["baseline_ratio_finite"] == pytest.approx(
        base[keep].mean().item() / rel[keep].mean().item(), rel=1e-12
    )
    assert all(math.isfinite(v) for v in summary.values())
    per_step = report.per_step()
    assert np.isfinite(per_step["relative_l2"]).all()
    np.testing.assert_allclose(per_step["relative_l2"], counted.mean(0), rtol=1e-12)
    assert per_step["first_nonfinite"].values.tolist() == [-1, k, -1, -1]
    paths = report.write(tmp_path, n_times=3)
    assert json.loads(paths["metrics"].read_text())["first_nonfinite_step"] == k
    console = Console(file=io.StringIO(), width=200)
    report.print_table(console)
    assert "1 of 4 trajectories diverged (first at step 2)" in console.file.getvalue()


def test_a_diverging_model_ranks_below_a_stable_one():
    # Survivorship bias: dropping diverged trajectories would make a model that
    # blows up on half the set (and is slightly better on the rest) look best.
    data = make_data(n=4, t=6)
    target = data["target"]
    stable = target + 0.3 * torch.randn_like(target)
    unstable = target + 0.1 * torch.randn_like(target)
    unstable[:2, 3:] = math.inf
    kwargs = {k: data[k] for k in ("times", "coords", "channel_names", "baseline")}
    good = RolloutReport(stable, target, **kwargs).metrics()
    bad = RolloutReport(unstable, target, **kwargs).metrics()
    assert bad["rel_l2_mean_finite"] < good["rel_l2_mean_finite"]  # the old ranking
    assert bad["rel_l2_mean"] > good["rel_l2_mean"]
    assert bad["correlation_time_batch"] < good["correlation_time_batch"]


def test_first_nonfinite_from_the_engine_is_merged_with_the_data():
    data = make_data(n=3, t=5)
    pred = data["pred"].clone()
    pred[2, 4] = math.inf
    report = RolloutReport(
        pred,
        data["target"],
        times=data["times"],
        coords=data["coords"],
        channel_names=data["channel_names"],
        first_nonfinite=torch.tensor([-1, 1, 3]),  # the engine saw trajectory 1 go bad
    )
    assert report.first_nonfinite.tolist() == [-1, 1, 3]
    assert report.metrics()["num_nonfinite"] == 2
    assert report.metrics()["first_nonfinite_step"] == 1


def test_all_trajectories_nonfinite_count_as_failures_not_nan(tmp_path):
    data = make_data(n=2, t=3)
    pred = torch.full_like(data["pred"], math.nan)
    report = RolloutReport(
        pred,
        data["target"],
        times=data["times"],
        coords=data["coords"],
        channel_names=data["channel_names"],
    )
    summary = report.metrics()
    assert summary["num_nonfinite"] == summary["num_trajectories"] == 2
    assert summary["rel_l2_mean"] == 1.0  # no baseline: the floor
    assert summary["correlation_time_batch"] == 0.0
    assert math.isnan(summary["rel_l2_mean_finite"])
    paths = report.write(tmp_path)
    written = json.loads(paths["metrics"].read_text())
    assert written["rel_l2_mean"] == 1.0
    assert written["rel_l2_mean_finite"] is None


def is_png(path):
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("space", [(8, 8), (16,), (), (6, 6, 4)])
def test_write_produces_netcdf_json_and_pngs(tmp_path, space):
    report, _ = make_report(space=space, t=5)
    paths = report.write(tmp_path, sample=1, n_times=3)
    figures = {"fields", "error_vs_step"} | ({"error_spectrum"} if space else set())
    assert set(paths) == {"netcdf", "metrics"} | figures
    for name in figures:
        assert is_png(paths[name]), name
    assert json.loads(paths["metrics"].read_text()) == pytest.approx(report.metrics())
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    with xr.open_dataset(paths["netcdf"], engine="h5netcdf") as ds:
        assert ds["prediction"].dims[:3] == ("sample", "time", "channel")
        assert len(ds["prediction"].dims) == 3 + len(space)


def test_table_lists_every_summary_metric():
    report, _ = make_report()
    buffer = io.StringIO()
    report.print_table(Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert report.table().row_count == len(report.metrics())
    for key in report.metrics():
        assert key in text
    assert f"{report.metrics()['rel_l2_mean']:.4g}" in text


def test_float32_and_attrs_survive_the_netcdf(tmp_path):
    data = make_data(n=2, t=3)
    report = RolloutReport(
        data["pred"].float(),
        data["target"].float(),
        times=torch.tensor(data["times"]),
        coords=data["coords"],
        channel_names=data["channel_names"],
        attrs={"split": "test", "time_history": 2, "flag": True, "path": tmp_path},
    )
    path = report.to_netcdf(tmp_path / "r.nc")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["prediction"].dtype == np.float32
        assert ds.attrs["split"] == "test"
        assert ds.attrs["time_history"] == 2
        assert ds.attrs["flag"] == 1
        assert ds.attrs["path"] == str(tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"channel_names": ["u"]}, "channel_names has 1 names for 2 channels"),
        ({"coords": {"x": np.arange(8)}}, "one 1-D coordinate per spatial dim"),
        ({"coords": {"x": np.arange(8), "y": np.arange(7)}}, "got lengths"),
        ({"coords": {"x": np.arange(8), "time": np.arange(8)}}, "reserved"),
        ({"times": np.arange(3)}, "one time per predicted step"),
        ({"times": np.array([1.0, 2, 4, 5, 6, 7])}, "pass output_interval"),
        ({"first_nonfinite": torch.zeros(3)}, "one entry per trajectory"),
        ({"correlation_threshold": 1.5}, "correlation_threshold"),
    ],
)
def test_bad_input_is_named(override, message):
    data = make_data()
    data.pop("baseline")
    data.update(override)
    with pytest.raises(ValueError, match=message):
        RolloutReport(data.pop("pred"), data.pop("target"), **data)


def test_output_interval_overrides_the_times_spacing():
    data = make_data()
    corr = M.pearson_correlation(data["pred"], data["target"])
    report = RolloutReport(
        data["pred"],
        data["target"],
        times=np.array([1.0, 2, 4, 5, 6, 7]),
        coords=data["coords"],
        channel_names=data["channel_names"],
        output_interval=3.0,
    )
    expected = M.batch_correlation_time(corr, 0.8, 3.0).item()
    assert report.metrics()["correlation_time_batch"] == pytest.approx(expected)
