"""A training report per run: TensorBoard logs and a loss-curve PNG under `runs/<pipeline>/<time>/`.

Scalars are kept in memory as they are logged; the PNG (matplotlib, Agg backend: no display
needed) is drawn when the run ends. A report without a root directory records nothing on disk,
so tests and the update task can skip it (`TRAINING_RUNS_DIR=off`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

PNG_NAME = "loss_curves.png"


class TrainingReport:
    def __init__(self, pipeline: str, root: str | Path | None):
        self.pipeline = pipeline
        self.curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.directory: Path | None = None
        self._writer = None
        if root:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            self.directory = Path(root) / pipeline / stamp

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Record `tag` (e.g. "users/val_loss": the part before "/" names the plot) at `step`."""
        self.curves[tag].append((step, float(value)))
        if self.directory is not None:
            self._tensorboard().add_scalar(tag, float(value), step)

    def _tensorboard(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when writing

            self.directory.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(log_dir=str(self.directory))
        return self._writer

    def close(self) -> Path | None:
        """Flush TensorBoard, draw the PNG; the report's directory (None when not written)."""
        if self.directory is None or not self.curves:
            return None
        self._tensorboard().close()
        self._plot(self.directory / PNG_NAME)
        return self.directory

    def _plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        groups: dict[str, list[str]] = defaultdict(list)
        for tag in sorted(self.curves):
            groups[tag.split("/", 1)[0]].append(tag)
        figure, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.5), squeeze=False)
        for ax, (group, tags) in zip(axes[0], groups.items(), strict=True):
            for tag in tags:
                steps, values = zip(*self.curves[tag], strict=True)
                ax.plot(steps, values, label=tag.split("/", 1)[-1])
            ax.set_title(f"{self.pipeline}: {group}")
            ax.set_xlabel("epoch")
            ax.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
