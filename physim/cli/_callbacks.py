"""Lightning callbacks of the training CLI: resumable checkpoints, progress in logs."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint as LightningModelCheckpoint
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar

from physim._progress import Periodic, format_seconds, is_terminal, report_line

__all__ = ["LogProgress", "ModelCheckpoint", "progress_bar"]


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` that keeps the best score across a resume.

    Every run, a resumed one too, writes to its own run folder, so ``dirpath`` differs
    from the one stored in the checkpoint, and Lightning then restores only
    ``best_model_path``, not ``best_model_score``: the first checkpoint after the
    resume becomes "best" whatever its score, and ``test`` would use it. Here the
    best score, path and top-k list are restored whatever the folder (same monitor
    and mode: Lightning routes the state by both). Checkpoints left in the earlier
    run's folder are never deleted (Lightning removes only files in its own
    ``dirpath``), so the restored best path stays valid.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("dirpath", self.dirpath) == self.dirpath:
            super().load_state_dict(state_dict)
            return
        self.best_model_score = state_dict["best_model_score"]
        self.best_model_path = state_dict["best_model_path"]
        self.best_k_models = state_dict.get("best_k_models", self.best_k_models)
        self.kth_best_model_path = state_dict.get(
            "kth_best_model_path", self.kth_best_model_path
        )
        self.kth_value = state_dict.get("kth_value", self.kth_value)


class LogProgress(ProgressBar):
    """Plain progress lines for logs: stage, epoch, batch, loss, time.

    A line every ``interval`` seconds (``PHYSIM_PROGRESS_SECONDS``, default 10) from a
    timer thread, so a slow batch cannot silence it, and one at the end of each
    stage; only on global rank 0.
    """

    def __init__(self, interval: float | None = None) -> None:
        super().__init__()
        self._enabled = True
        self._periodic = Periodic(self._report, interval)
        self._stage = ""
        self._batch = 0
        self._total: float | int | None = None
        self._started = 0.0
        self._active = False
        self._train_batch = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _begin(self, stage: str, total: Any) -> None:
        self._stage, self._batch, self._total = stage, 0, total
        if stage == "train":
            self._train_batch = 0
        if not self._active:
            self._started = time.monotonic()
            self._active = True
        if self._enabled and self.trainer.is_global_zero:
            self._periodic.start()

    def _report(self) -> None:
        trainer = self._trainer
        if not (self._enabled and self._active) or trainer is None:
            return
        total = self._total
        known = isinstance(total, int) or (isinstance(total, float) and total < 1e12)
        count = f"{self._batch}/{int(total)}" if known and total else f"{self._batch}"
        metrics = {
            k: v
            for k, v in self.get_metrics(trainer, trainer.lightning_module).items()
            if k != "v_num"
        }
        shown = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in list(metrics.items())[:4]
        )
        elapsed = format_seconds(time.monotonic() - self._started)
        report_line(
            f"{self._stage}: epoch {trainer.current_epoch}, batch {count}, "
            f"{elapsed} elapsed" + (f", {shown}" if shown else "")
        )

    def _finish(self) -> None:
        self._periodic.stop()
        self._report()

    # -------------------------------------------------------------- hooks
    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        self._begin("train", self.total_train_batches)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._batch += 1
        self._train_batch = self._batch

    def on_train_epoch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        self._finish()

    def on_validation_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        if not trainer.sanity_checking:
            self._begin("validate", self.total_val_batches)

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._batch += 1

    def on_validation_epoch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        if not trainer.sanity_checking:
            self._finish()
            if trainer.state.fn == "fit":  # back to the training epoch
                self._stage, self._total = "train", self.total_train_batches
                self._batch = self._train_batch

    def on_test_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        self._begin("test", sum(trainer.num_test_batches))

    def on_test_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._batch += 1

    def on_test_epoch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        self._finish()

    def teardown(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        self._periodic.stop()
        self._active = False


def progress_bar() -> ProgressBar:
    """rich bars in a terminal, else plain periodic lines (:class:`LogProgress`)."""
    return RichProgressBar() if is_terminal() else LogProgress()
