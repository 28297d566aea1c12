"""GDI-Net figures of a trained run: ``hieralloc plot RUN_DIR`` (HGRL Fig. 5 and Fig. 6).

A run of ``hgrl`` with ``algo.features.source = gdinet`` carries, in its checkpoints, the GDI-Net
it fitted in the closed loop (HGRL Sec. 4.4) and every cell its agents observed. :func:`plot_run`
rebuilds the learner exactly as ``hieralloc train`` / ``hieralloc eval`` do (the run's resolved
config, its training env, :meth:`AlgoSpec.build`), loads the newest checkpoint (``weights_only``,
:func:`hieralloc.runs.load_checkpoint`) and draws, for one frame of the data set:

* ``gdinet_multiscale_frame<K>.png``: HGRL Fig. 6, per scale the sparse observations, the ground
  truth, GDI-Net's estimate and its x / y Sobel gradients (Eq. (23)-(25));
* ``gdinet_gradients_frame<K>.png``: HGRL Fig. 5, the estimate of each scale with its gradient field.

The frame defaults to the one with the most observed cells (the estimate there is the best
supported by data); values are in the data set's demand units (not divided by ``obs_div``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hieralloc.algos.hgrl.features import DemandFeatures
from hieralloc.algos.hgrl.gdinet import GDIEstimator
from hieralloc.errors import CheckpointError, ConfigError, HierallocError, IncompatibleError

#: algorithms whose run directories hold a GDI-Net (``learner.features``) to draw
GDI_ALGOS: tuple[str, ...] = ("hgrl",)


@dataclass
class RunFeatures:
    """The demand features of a run's newest checkpoint, and where they came from."""

    features: DemandFeatures
    estimator: GDIEstimator
    algo: str
    env: str
    step: int


def load_run_features(run_dir: Path) -> RunFeatures:
    """Rebuild an ``hgrl`` run's learner, load its newest checkpoint and return its GDI-Net features.

    Raises a one-line :class:`~hieralloc.errors.HierallocError` for a run of another algorithm, a run
    whose features source is not ``gdinet``, a run without a checkpoint, and a run whose GDI-Net was
    never fitted.
    """
    import torch

    from hieralloc.runs import RunDir, config_hash
    from hieralloc.train import load_run, make_envs

    run_dir = Path(run_dir)
    tree = RunDir(run_dir).read_config()  # CheckpointError when this is not a run directory
    algo = str(tree["algo"])
    if algo not in GDI_ALGOS:
        raise IncompatibleError(
            f"'{run_dir}' is a run of {algo}: plots of runs are drawn for {' / '.join(GDI_ALGOS)} runs (GDI-Net "
            "figures); for benchmarks pass results.json or the results directory")
    resolved, rd = load_run(run_dir)
    source = resolved.algo_cfg.features.source
    if source != "gdinet":
        raise ConfigError("algo_config.features.source",
                          f"is {source!r}; GDI-Net figures need a run trained with algo.features.source=gdinet",
                          str(rd.config_path))
    if not rd.checkpoints():
        raise CheckpointError(f"run '{run_dir}' has no checkpoint (checkpoints/ckpt_*.pt): train it first "
                              "('hieralloc train ... --out RUN_DIR', or add --resume for an interrupted run)")
    torch.set_num_threads(resolved.train_cfg.threads)
    torch.manual_seed(resolved.seed)
    train_env, _ = make_envs(resolved)  # the env the learner was built on (its frames are GDI-Net's grid)
    learner: Any = resolved.algo_spec.build(train_env, resolved.algo_cfg, resolved.seed)
    ckpt = rd.latest_checkpoint(config_hash(resolved.tree))
    if ckpt is None:  # pragma: no cover - checked above; a race with a deleting process
        raise CheckpointError(f"run '{run_dir}' has no checkpoint: train it first")
    learner.load_state_dict(ckpt["payload"]["learner"])
    features = learner.features
    estimator = getattr(features, "estimator", None)
    if not isinstance(features, DemandFeatures) or estimator is None:  # pragma: no cover - gdinet source has one
        raise IncompatibleError(f"the {algo} learner of '{run_dir}' holds no GDI-Net estimator")
    if features.fits == 0 or len(features.observations) == 0:
        raise CheckpointError(
            f"GDI-Net of run '{run_dir}' was not fitted by its last checkpoint (step {int(ckpt['step'])}); train "
            "longer, or with algo.features.explore_episodes > 0 and algo.features.initial_steps > 0")
    return RunFeatures(features, estimator, algo, str(tree["env"]), int(ckpt["step"]))


def most_observed_frame(features: DemandFeatures) -> int:
    """The frame with the most observed cells (the first one on ties)."""
    return int(np.argmax(features.observations.mask.sum(axis=(1, 2))))


def plot_run(run_dir: Path, out: Path | None = None, frame: int | None = None) -> list[Path]:
    """Draw HGRL Fig. 6 and Fig. 5 for frame ``frame`` (default :func:`most_observed_frame`) of a
    trained ``hgrl`` run into ``out`` (default ``RUN_DIR/plots``); returns the PNG paths."""
    from hieralloc.algos.hgrl.plots import plot_gradient_field, plot_multiscale

    run_dir = Path(run_dir)
    rf = load_run_features(run_dir)
    f = rf.features
    k = most_observed_frame(f) if frame is None else int(frame)
    if not 0 <= k < f.L:
        raise HierallocError(f"--frame {k} is out of range: the run's data set has frames 0..{f.L - 1}")
    out_dir = Path(out) if out is not None else run_dir / "plots"
    sparse = f.observations.sparse_frames()[k]
    truth = f.frames[k]
    estimate = rf.estimator.predict([k])[0]
    n_obs = int(np.isfinite(sparse).sum())
    c = f.gdi_config
    where = f"{rf.algo} on {rf.env}, step {rf.step}, frame {k} ({n_obs}/{sparse.size} cells observed)"
    return [
        plot_multiscale(sparse, truth, estimate, out_dir / f"gdinet_multiscale_frame{k}.png",
                        f"GDI-Net of {where}: observations, truth, estimate and gradients per scale",
                        factors=f.factors, gradient_mode=c.gradient_mode, padding=c.padding),
        plot_gradient_field(estimate, out_dir / f"gdinet_gradients_frame{k}.png",
                            f"GDI-Net estimate of {where}: Sobel gradient fields per scale",
                            factors=f.factors, gradient_mode=c.gradient_mode, padding=c.padding),
    ]


__all__ = ["GDI_ALGOS", "RunFeatures", "load_run_features", "most_observed_frame", "plot_run"]
