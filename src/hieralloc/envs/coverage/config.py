"""Configuration of the demand-coverage grid (HGRL Sec. 3 and Sec. 5.1)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hieralloc.config import Config, param
from hieralloc.errors import ConfigError


@dataclass
class CoverageConfig(Config):
    """Every parameter of the coverage environment.

    The defaults are the synthetic city (``coverage-city`` differs only in its
    ``delta``/``capacity``); the registered scenarios in :mod:`hieralloc.envs.coverage` set the
    Toy example of HGRL Sec. 5.1.
    """

    source: str = param("city", "demand source (see hieralloc.envs.coverage.demand.SOURCES): "
                        "toy, city, npy")
    source_options: dict[str, Any] = param(
        default_factory=dict, help="source-specific options (e.g. city: n_hotspots; npy: path)")
    height: int = param(50, "grid height H (rows, the x coordinate of HGRL)", low=1, high=4096)
    width: int = param(50, "grid width W (columns, the y coordinate of HGRL)", low=1, high=4096)
    n_frames: int = param(0, "number of demand frames the source generates (0: the source's "
                          "default, toy 28, city 336)", low=0, high=1_000_000)
    data_seed: int = param(0, "seed of the demand generator (the data set), independent of the "
                           "episode seed", low=0)
    n_agents: int = param(10, "number of resources N (HGRL App. C: N = 10)", low=1, high=100_000)
    window: int = param(3, "side w of the odd w x w service window and of the move set "
                        "(HGRL App. C: 3)", low=1)
    capacity: float = param(1.0, "service capacity U of one resource per covered cell per step",
                            low=0.0, low_open=True)
    episode_length: int = param(20, "steps T per episode (HGRL App. C: 20)", low=1, high=100_000)
    delta: float = param(0.2, "movement penalty delta of the reward, HGRL Eq. (1)/(4) (App. C: "
                         "0.2 Toy, 0.75 TaxiBJ)", low=0.0)
    distance: str = param("manhattan", "distance used in the reward penalty (ATD is always "
                          "Manhattan, HGRL Eq. (27))", choices=("manhattan", "euclidean"))
    reward_mode: str = param("served", "'served': coverage this step (episode return = Eq. (1)); "
                             "'gain': literal Eq. (4) difference C_t - C_{t-1}",
                             choices=("served", "gain"))
    reward_split: str = param("team", "'team': every agent receives the team reward; "
                              "'individual': each agent its share of the served demand and its "
                              "own distance (sums to the team reward)",
                              choices=("team", "individual"))
    split: str = param("train", "time split the episode start is drawn from (6:1, HGRL Sec. 5.1)",
                       choices=("train", "eval", "all"))
    train_fraction: float = param(6 / 7, "fraction of the frames in the train split",
                                  low=0.0, high=1.0, low_open=True, high_open=True)
    obs_normalize: bool = param(True, "divide the demand in observations and state by the data "
                                "set's maximum demand")

    def validate(self) -> None:
        super().validate()
        if self.window % 2 != 1:
            raise ConfigError("window", f"must be odd (the window is centred on the resource), "
                              f"got {self.window}")
        if self.window > min(self.height, self.width):
            raise ConfigError("window", f"must be at most min(height, width) = "
                              f"{min(self.height, self.width)}, got {self.window}")
        from hieralloc.envs.coverage.demand import SOURCES

        if self.source not in SOURCES:
            raise ConfigError("source", f"must be one of {', '.join(sorted(SOURCES))}, "
                              f"got {self.source!r}")
        if not isinstance(self.source_options, dict):
            raise ConfigError("source_options", "must be a mapping")

    def replace(self, **changes: Any) -> CoverageConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)
