"""TSM under 2-process CPU (gloo) DDP with a non-finite loss on one rank.

Each run is a subprocess with a timeout, so a hang (the failure this guards against:
one rank skipping backward while the other waits in the gradient all-reduce) fails
the test instead of stalling the suite.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    from functools import partial

    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader

    from physim.models import LearnedInterpolation
    from physim.solvers import (
        FilteredVelocityField,
        FiniteVolumeNS2D,
        KolmogorovForcing,
    )
    from physim.tasks import TemporalStencilModel

    NAN_STEPS = {int(s) for s in sys.argv[1].split(",") if s}
    OUT = sys.argv[2]


    class Forced(TemporalStencilModel):
        def model_step(self, batch):
            loss, pred = super().model_step(batch)
            if self.global_rank == 1 and self.global_step in NAN_STEPS:
                loss = loss * float("nan")
            return loss, pred

        def on_train_end(self):
            torch.save(
                {
                    "skipped": self.skipped_updates,
                    "params": [p.detach().clone() for p in self.parameters()],
                },
                f"{OUT}/rank{self.global_rank}.pt",
            )


    def main():
        torch.manual_seed(0)
        solver = FiniteVolumeNS2D(8, forcing=KolmogorovForcing(), dtype="float64")
        dt = 0.5 * solver.grid_spacing / 7
        v = FilteredVelocityField(8, peak_wavenumber=2).sample(
            8, generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
        frames = [v]
        for _ in range(2):
            frames.append(solver.advance(frames[-1], dt))
        data = torch.stack(frames, 1)
        samples = [{"history": d[:1], "future": d[1:]} for d in data]
        net = LearnedInterpolation(2, hidden_channels=4, num_layers=1)
        task = Forced(
            net, solver, partial(torch.optim.AdamW, lr=1e-3), dt=dt, time_history=1
        ).double()
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=2,
            strategy="ddp_spawn",
            max_steps=6,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(task, DataLoader(samples, batch_size=2))


    if __name__ == "__main__":
        main()
    """
)


def run(tmp_path: Path, nan_steps: str) -> subprocess.CompletedProcess:
    script = tmp_path / "tsm_ddp.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(script), nan_steps, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,  # a hang fails here; a clean run takes ~20 s
    )


def test_a_nan_on_one_rank_skips_the_update_on_both(tmp_path):
    import torch

    done = run(tmp_path, "1,3")
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert ranks[0]["skipped"] == ranks[1]["skipped"] == 2
    for a, b in zip(ranks[0]["params"], ranks[1]["params"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert torch.isfinite(a).all()


def test_the_skip_limit_stops_both_ranks_cleanly(tmp_path):
    # Default max_skipped_fraction 0.1 of max(updates, 20): the third skip stops it.
    done = run(tmp_path, "0,1,2,3,4,5")
    assert done.returncode != 0
    assert "3 of 3 updates were skipped" in done.stderr
