"""An Optuna sweeper for Hydra multirun, written for current Optuna and SQLAlchemy 2.

Why our own: the ``hydra-optuna-sweeper`` plugin pins ``optuna<3``, whose database storage
breaks under SQLAlchemy 2 (which MLflow needs). This one keeps the ``-m`` habit and the
search-space syntax of Hydra's override grammar (``choice(...)``, ``interval(...)``,
``tag(log, interval(...))``, ``range(...)``) and adds what a shared study needs:

- trials are asked from, and told to, a study in ``storage`` (SQLite by default, any
  SQLAlchemy URL such as PostgreSQL for many machines); several workers started with the
  same command share the study and stop when it holds ``n_trials`` trials;
- each job gets ``+optuna.trial_id=<id>`` so training can report per-epoch validation loss
  and be pruned (forecast.training.callbacks.OptunaPruning);
- a crashed job is told as FAIL and the sweep goes on; a pruned one as PRUNED.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from forecast.training.sweep import sqlite_lock

log = logging.getLogger(__name__)

SAMPLERS = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
PRUNERS = {
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    "none": optuna.pruners.NopPruner,
}


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.forecast_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    study_name: str = "forecast"
    storage: str = "sqlite:///optuna.db"
    direction: str = "minimize"
    n_trials: int = 20
    sampler: str = "tpe"
    seed: int | None = None
    pruner: str = "median"
    params: dict[str, str] = field(default_factory=dict)


def register() -> None:
    ConfigStore.instance().store(
        group="hydra/sweeper", name="forecast_optuna", node=OptunaSweeperConf, provider="forecast"
    )


def distribution(override: Override) -> BaseDistribution:
    """An Optuna distribution from a Hydra sweep override such as ``interval(1e-4, 1e-2)``."""
    value = override.value()
    if isinstance(value, ChoiceSweep | RangeSweep):
        # Choices as override strings ("64", "[1,2]"), so any value type round-trips.
        return CategoricalDistribution(
            list(override.sweep_iterator(transformer=Transformer.encode))
        )
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(value.start, value.end, log=log_scale)
    raise ValueError(f"{override.input_line}: use choice(), range() or interval() to search")


class OptunaSweeper(Sweeper):
    def __init__(
        self,
        study_name: str,
        storage: str,
        direction: str,
        n_trials: int,
        sampler: str,
        seed: int | None,
        pruner: str,
        params: dict[str, str],
    ) -> None:
        self.study_name, self.storage, self.direction = study_name, storage, direction
        self.n_trials, self.sampler, self.seed, self.pruner = n_trials, sampler, seed, pruner
        self.params = dict(params or {})

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def study(self) -> optuna.Study:
        storage = optuna.storages.RDBStorage(
            self.storage,
            # Several workers write one SQLite file: wait for the lock instead of failing.
            engine_kwargs={"connect_args": {"timeout": 60}}
            if self.storage.startswith("sqlite")
            else {},
        )
        return optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            direction=self.direction,
            sampler=SAMPLERS[self.sampler](seed=self.seed),
            pruner=PRUNERS[self.pruner](),
            load_if_exists=True,
        )

    def sweep(self, arguments: list[str]) -> list[Any]:
        parser = OverridesParser.create()
        fixed, space = [], {}
        # The config's search space first, then the command line's: a range given there
        # replaces the preset's for that key.
        for override in parser.parse_overrides([*self._param_lines(), *arguments]):
            if override.is_sweep_override():
                space[override.get_key_element()] = distribution(override)
            else:
                fixed.append(override.input_line)
        with sqlite_lock(self.storage):
            study = self.study()
        log.info("study %r in %s: %d trials wanted", self.study_name, self.storage, self.n_trials)
        held = len(study.get_trials(deepcopy=False))
        if held >= self.n_trials:
            log.warning(
                "study %r already holds %d trials (n_trials=%d): nothing to run; give a new "
                "hydra.sweeper.study_name, or a larger hydra.sweeper.n_trials to extend it",
                self.study_name, held, self.n_trials,
            )  # fmt: skip
        results, job_idx = [], 0
        while len(study.get_trials(deepcopy=False)) < self.n_trials:
            trial = study.ask(space)
            overrides = [
                *fixed,
                *(f"{key}={value}" for key, value in trial.params.items()),
                f"+optuna.trial_id={trial._trial_id}",
                f"+optuna.trial_number={trial.number}",
            ]
            # In the study, so that any worker can name the best trial's full command
            trial.set_user_attr("overrides", overrides[:-2])
            try:
                (job,) = self.launcher.launch([overrides], initial_job_idx=job_idx)
            except BaseException:  # Ctrl-C, SIGTERM: never leave the trial RUNNING for good
                study.tell(trial, state=TrialState.FAIL)
                raise
            job_idx += 1
            results.append(self._tell(study, trial, job))
        self._summary(study)
        return results

    def _param_lines(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.params.items()]

    def _tell(self, study: optuna.Study, trial: optuna.Trial, job: Any) -> Any:
        error = job._return_value if isinstance(job._return_value, BaseException) else None
        if isinstance(error, optuna.TrialPruned):
            study.tell(trial, state=TrialState.PRUNED)
        elif error is not None:
            log.error("trial %d failed: %r; the sweep goes on", trial.number, error)
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, float(job.return_value))
        return job

    def _summary(self, study: optuna.Study) -> None:
        states = [t.state for t in study.get_trials(deepcopy=False)]
        counts = {s.name.lower(): states.count(s) for s in TrialState if states.count(s)}
        log.info("study %r: %s", self.study_name, counts)
        completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
        if completed:
            best = study.best_trial
            log.info("best trial %d: value %.5f, %s", best.number, best.value, best.params)
            folder = Path(self.config.hydra.sweep.dir)
            folder.mkdir(parents=True, exist_ok=True)  # no job ran if the study was complete
            results = {
                "best_value": best.value,
                "best_params": best.params,
                # the study's best, which in a shared study may be another worker's trial:
                # SweepTracker writes experiment/best.yaml from these
                "best_overrides": best.user_attrs.get("overrides"),
                "best_trial": best.number,
                "best_trial_id": best._trial_id,  # its runs' param optuna.trial_id
                **counts,
            }
            OmegaConf.save(OmegaConf.create(results), folder / "optuna_results.yaml")
