"""Multirun bookkeeping: one MLflow parent run per sweep, a table of trials, the best config.

``SweepTracker`` is a Hydra callback (``hydra.callbacks`` in conf/config.yaml): it only acts
in multirun mode, for the grid sweeper and the Optuna sweeper alike. The Lightning callback
a trial uses to be pruned is ``forecast.training.callbacks.OptunaPruning``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from forecast.console import quiet_libraries

log = logging.getLogger(__name__)

PARENT_RUN_ENV = "FORECAST_PARENT_RUN_ID"  # read by train.py to tag each trial's run


@contextlib.contextmanager
def sqlite_lock(uri: str) -> Iterator[None]:
    """Serialize first use of a SQLite store across the processes of one machine.

    Two sweep workers starting together would both create the schema of a new MLflow or
    Optuna database, and one of them fails halfway through its migrations. The lock file lies
    in the system's temporary folder, named by the database's absolute path, so no
    ``mlflow.db.lock`` is left beside the user's files (deleting it after use would race with
    a process that is opening it).
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    database = Path(uri.removeprefix("sqlite:///")).resolve()
    database.parent.mkdir(parents=True, exist_ok=True)  # where the store is about to be made
    digest = hashlib.sha256(str(database).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"forecast-{database.name}-{digest}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class SweepTracker(Callback):
    """Parent run at the start of a multirun; summary table and best overrides at its end."""

    def __init__(self, objective: str = "best_val_loss", direction: str = "minimize") -> None:
        self.objective, self.direction = objective, direction
        self.trials: list[dict[str, Any]] = []
        self.parent_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        quiet_libraries()
        mlflow.set_tracking_uri(config.logger.tracking_uri)
        with sqlite_lock(config.logger.tracking_uri):
            experiment = mlflow.set_experiment(config.logger.experiment_name)
        sweep_dir = str(Path(config.hydra.sweep.dir).resolve())
        client = mlflow.MlflowClient()
        run = client.create_run(
            experiment.experiment_id,
            run_name=f"sweep {Path(sweep_dir).name}",
            tags={"forecast.sweep_dir": sweep_dir},
        )
        self.parent_id = run.info.run_id
        os.environ[PARENT_RUN_ENV] = self.parent_id
        # Ctrl-C or a crash skips on_multirun_end: never leave the parent RUNNING forever.
        atexit.register(self._close, "KILLED")
        log.info("sweep parent run %s", self.parent_id)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if self.parent_id is None:
            return
        failed = job_return.status != JobStatus.COMPLETED
        value = None if failed else job_return.return_value
        status = type(job_return._return_value).__name__ if failed else "ok"
        self.trials.append(
            {"overrides": list(job_return.overrides or []), "value": value, "status": status}
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_id is None:
            return
        done = [t for t in self.trials if t["value"] is not None]
        lines = [f"{'#':>3} {self.objective:>14}  status  overrides"]
        for i, trial in enumerate(self.trials):
            value = "-" if trial["value"] is None else f"{trial['value']:.5f}"
            shown = " ".join(o for o in trial["overrides"] if not o.startswith("+optuna."))
            lines.append(f"{i:>3} {value:>14}  {trial['status']:<6}  {shown}")
        client = mlflow.MlflowClient()
        best = self._best(config, done)
        if best is not None:
            path = self._save_best(config, best)
            lines += [
                f"best: {best['value']:.5f} with {path}",
                f"  forecast-train -cd {path.parent.parent} experiment=best",
            ]
            client.log_metric(self.parent_id, f"best_{self.objective}", best["value"])
            client.log_artifact(self.parent_id, str(path))
            registered = self._register(config, best)
            if registered:
                lines.append(f"registered {registered}")
        client.log_text(self.parent_id, "\n".join(lines), "trials.txt")
        log.info("sweep of %d trials\n%s", len(self.trials), "\n".join(lines))
        self._close("FINISHED")

    def _best(self, config: DictConfig, done: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The Optuna study's best trial when the sweeper reported one: workers sharing a study
        each see only their own trials, and the best may be another's. Else this run's best."""
        results = Path(config.hydra.sweep.dir) / "optuna_results.yaml"
        if results.is_file():
            study = OmegaConf.load(results)
            if study.get("best_overrides") is not None:
                return {
                    "overrides": list(study.best_overrides),
                    "value": study.best_value,
                    "trial_id": study.get("best_trial_id"),
                }
        if not done:
            return None
        pick = min if self.direction == "minimize" else max
        return pick(done, key=lambda t: t["value"])

    def _register(self, config: DictConfig, best: dict[str, Any]) -> str | None:
        """Register the best trial's model, the one version a sweep adds to the registry:
        found by its Optuna trial id (which may be another worker's), else as this sweep's
        child run with the best objective; under the name that trial's config gives."""
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name(config.logger.experiment_name)
        if best.get("trial_id") is not None:
            where = f"params.`optuna.trial_id` = '{best['trial_id']}'"
        else:
            where = f"tags.`mlflow.parentRunId` = '{self.parent_id}'"
        order = "ASC" if self.direction == "minimize" else "DESC"
        runs = client.search_runs(
            [experiment.experiment_id],
            f"{where} and attributes.status = 'FINISHED'",
            order_by=[f"metrics.{self.objective} {order}"],
            max_results=1,
        )
        name = runs[0].data.params.get("register_model") if runs else None
        if name in (None, "None"):
            return None
        run_id = runs[0].info.run_id
        (model,) = mlflow.search_logged_models(
            experiment_ids=[experiment.experiment_id],
            filter_string=f"source_run_id = '{run_id}'",
            output_format="list",
        )
        version = mlflow.register_model(f"models:/{model.model_id}", name)
        return f"{name} version {version.version} (run {run_id})"

    def _save_best(self, config: DictConfig, best: dict[str, Any]) -> Path:
        """The best trial's overrides as an experiment file forecast-train accepts.

        Config-group choices (``data=csv``) go to the defaults list, values to the body.
        """
        groups = set(config.hydra.runtime.choices)
        defaults, values = [], []
        for override in OverridesParser.create().parse_overrides(best["overrides"]):
            key = override.key_or_group.lstrip("+~")
            if key.startswith(("optuna", "hydra")) or key == "hparams_search":
                continue
            if key == "experiment":
                defaults.append(f"/experiment/{override.value()}")
            elif key in groups:
                defaults.append({f"override /{key}": override.value()})
            elif key == "data.path":  # resolved: the experiment reruns from any folder
                values.append(f"{key}={Path(override.get_value_element_as_str()).resolve()}")
            else:
                values.append(f"{key}={override.get_value_element_as_str()}")
        body = OmegaConf.to_container(OmegaConf.from_dotlist(values))
        path = Path(config.hydra.sweep.dir) / "experiment" / "best.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"# @package _global_\n# best of sweep {config.hydra.sweep.dir}: "
            f"{self.objective}={best['value']:.5f}\n"
            + OmegaConf.to_yaml({"defaults": [*defaults, "_self_"], **body})
        )
        return path

    def _close(self, status: str) -> None:
        if self.parent_id is None:
            return
        mlflow.MlflowClient().set_terminated(self.parent_id, status)
        self.parent_id = None
        os.environ.pop(PARENT_RUN_ENV, None)
