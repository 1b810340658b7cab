"""convae-eval's scoring: a trained model on its run's test split, clean and at several
input noise levels, with the training's own metric objects (convae/evaluate.py is the
command)."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from omegaconf import DictConfig
from torchvision.utils import make_grid

from convae.config.errors import check
from convae.data.datamodule import ImageDataModule
from convae.data.noise import TEST, add_noise, seeded_generator, to_unit
from convae.hardware import default_threads
from convae.metrics.checkerboard import checkerboard_scores
from convae.models.upsample import keep_transposed_float32
from convae.runs.checkpoint import run_relative
from convae.runs.finished_run import FinishedRun
from convae.runs.results import EVAL_DIR, EVAL_JSON, EVAL_PNG, write_atomic, write_json_atomic
from convae.training.module import AutoencoderModule, eval_metrics, grid_metric, update_eval_metrics
from convae.training.module import load_module as load_trained_module

log = logging.getLogger("convae")
NOISE_SEED = 0  # not the run's seed: every model is scored on the same noisy digits
ZOOM, PAD, LABEL_PX, DPI = 3, 2, 160, 128  # DPI 2**7: pixel sizes survive the inch round trip


def load_module(ckpt: Path) -> AutoencoderModule:
    """Safe load (weights_only=True): a crafted checkpoint is refused, never unpickled
    into code; any failure is one line naming the file (convae.runs.checkpoint)."""
    return load_trained_module(ckpt)


def load_test_split(config: dict[str, Any], run: FinishedRun) -> tuple[torch.Tensor, str]:
    """The run's test split as floats, as the run saw it (convae.runs.finished_run); noise is
    added here, per level."""
    dm = ImageDataModule(**run.data_arguments(config, noise_std=0.0))
    dm.setup()
    return to_unit(dm.test_set.images), str(dm.source_used)


@torch.no_grad()
def score(
    module: AutoencoderModule, targets: torch.Tensor, std: float, batch_size: int,
    bf16: bool = False,
) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:  # fmt: skip
    """Metrics at one noise level, with the noisy inputs and reconstructions; ``bf16``: the
    forward pass under bf16 autocast, as a bf16-mixed run was trained and tested.

    The loss, PSNR and SSIM are training's own metric objects, updated as its test step
    updates them, so the clean level reproduces the run's test/* numbers."""
    # One draw for the whole split, keyed by the level: the same whatever the batch size.
    inputs = add_noise(targets, std, seeded_generator(NOISE_SEED, TEST, round(std * 1e6)))
    metrics = eval_metrics("eval").to(targets.device)
    grid = grid_metric(module.hparams.model)  # every test image, as the run's test/grid
    outputs = []
    for x, y in zip(inputs.split(batch_size), targets.split(batch_size), strict=True):
        # the forward pass at the run's training precision; update_eval_metrics then
        # scores float32 outputs, as in training
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = module(x)
        outputs.append(update_eval_metrics(metrics, module.loss_fn, logits, y))
        grid.update(outputs[-1])
    x_hat = torch.cat(outputs)
    n = module.hparams.config["callbacks"]["artifact_digits"]  # as the run scored them
    scores = {tag.removeprefix("eval/"): metric.compute().item() for tag, metric in metrics.items()}
    scores.update({name: value.item() for name, value in grid.compute().items()})
    return {**scores, **checkerboard_scores(x_hat[:n], targets[:n])}, inputs, x_hat


def figure_png(rows: list[tuple[float, torch.Tensor, torch.Tensor]], digits: int) -> bytes:
    """Per level, noisy inputs over reconstructions, ZOOM screen pixels per image pixel (so
    period-2 checkerboards stay visible) plus a label column: exact, testable pixel sizes."""
    tiles = torch.cat([t[:digits] for _, inputs, x_hat in rows for t in (inputs, x_hat)])
    grid = make_grid(tiles, nrow=digits, padding=PAD, pad_value=1.0)
    # make_grid repeats a grey channel three times: one channel back for grey images
    grid = grid[0].numpy() if tiles.shape[1] == 1 else grid.permute(1, 2, 0).numpy()
    h, w = ZOOM * grid.shape[0], ZOOM * grid.shape[1]
    fig = Figure(figsize=((LABEL_PX + w) / DPI, h / DPI), dpi=DPI)
    ax = fig.add_axes((LABEL_PX / (LABEL_PX + w), 0.0, w / (LABEL_PX + w), 1.0))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    side = tiles.shape[-2]
    centres = [PAD + (side + PAD) * i + (side - 1) / 2 for i in range(2 * len(rows))]
    labels = [f"{word} σ={std:g}" for std, _, _ in rows for word in ("input", "output")]
    ax.set_xticks([])
    ax.set_yticks(centres, labels=labels, fontsize=8)
    ax.tick_params(length=0)
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def merged_levels(
    previous: Path, checkpoint: str, levels: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """This call's levels, with the earlier calls' other levels of the same checkpoint kept
    (a level scored again is replaced), by noise level: eval.json grows with each call."""
    try:
        old = json.loads(previous.read_text())
    except (OSError, ValueError):
        return levels  # none yet, or not readable: this call's levels alone
    if not isinstance(old, dict) or old.get("checkpoint") != checkpoint:
        return levels  # another checkpoint's numbers do not mix with these
    new = {level["noise_std"] for level in levels}
    kept = [
        lv for lv in old.get("levels", [])
        if isinstance(lv, dict) and isinstance(lv.get("noise_std"), float | int)
        and lv["noise_std"] not in new
    ]  # fmt: skip
    return sorted([*kept, *levels], key=lambda level: level["noise_std"])


def evaluate_run(cfg: DictConfig, ckpt: Path, run_dir: Path, started: float) -> dict[str, Any]:
    """Scores ``ckpt`` (of the run in ``run_dir``, checked by convae-eval) at every noise
    level and writes eval/eval.json and eval.png; ``started``: the command's start."""
    torch.set_num_threads(cfg.threads or default_threads())
    module = load_module(ckpt)
    config = module.hparams.config
    run = FinishedRun.read(run_dir)
    targets, source = load_test_split(config, run)
    bf16 = run.results.get("precision") == "bf16-mixed"
    keep_transposed_float32(module, bool(run.results.get("float32_transposed")))  # as trained
    check(cfg.eval.digits <= len(targets), "eval.digits", cfg.eval.digits, "more than the split")
    levels, rows = [], []
    for std in cfg.eval.noise_stds:
        metrics, inputs, x_hat = score(module, targets, float(std), cfg.eval.batch_size, bf16)
        levels.append({"noise_std": float(std), **metrics})
        rows.append((float(std), inputs[: cfg.eval.digits], x_hat[: cfg.eval.digits]))
        log.info("noise_std=%g: %s", std, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    out = run_dir / EVAL_DIR
    out.mkdir(exist_ok=True)
    write_atomic(out / EVAL_PNG, figure_png(rows, cfg.eval.digits))
    checkpoint = run_relative(ckpt, run_dir)
    result = {
        "checkpoint": checkpoint,  # relative: a copied run names its own
        "data_source": source,
        "train_noise_std": config["data"]["noise_std"],
        "loss_name": module.loss_name,
        "forward_precision": "bf16-mixed" if bf16 else "32-true",
        "test_images": len(targets),
        "artifact_digits": min(config["callbacks"]["artifact_digits"], len(targets)),
        "levels": merged_levels(out / EVAL_JSON, checkpoint, levels),
        "wall_time_s": round(time.time() - started, 2),
    }
    write_json_atomic(out / EVAL_JSON, result)
    log.info("Wrote %s and %s", out / EVAL_JSON, EVAL_PNG)
    return result
