"""The config keys and what each does, read from the comments of ``conf/``: one source for the
docs' reference (``scripts/config_reference.py``), every command's ``--help`` and the nearest
valid names for a mistyped key. Light on purpose: ``--help`` and a typo are answered before
torch, Lightning or Hydra are imported."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

_HERE = Path(__file__).resolve().parent
# conf/ of a source checkout (editable install), else the copy a wheel packs into forecast/.
# A copy of the code without configs (inside a logged MLflow model) must still import.
CONF_DIR = str(next((p for p in (_HERE.parent / "conf", _HERE / "conf") if p.is_dir()), _HERE))
# Using a model has its own configs: there `model=` names a model file, not the config group.
SERVING_CONF_DIR = str(Path(CONF_DIR) / "serving")
LINE = 119  # --help's widest line
KEY = re.compile(r"^(?P<indent> *)(?P<key>[\w.@/-]+):(?P<value>.*)$")


@dataclass
class Key:
    path: str
    default: str
    comment: str

    @property
    def summary(self) -> str:
        """The comment's first sentence: what ``--help`` shows."""
        return re.split(r"(?<=[.;])\s+(?=[A-Z(])", self.comment, maxsplit=1)[0].rstrip(".;")


def header(path: Path) -> str:
    """The comment block a YAML file opens with: what the file is."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            lines.append(line.lstrip("# ").strip())
    return " ".join(lines)


def keys(path: Path) -> list[Key]:
    """Every key of a YAML file with its default (as written) and the comment lines above it
    or after it on its line, the file's opening block aside; nested keys dotted
    (``optimizer.lr``)."""
    out, comment, stack = [], [], []
    text = path.read_text().splitlines()
    opening = next((i for i, line in enumerate(text) if not line.startswith("#")), len(text))
    for line in text[opening:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("# ").strip())
            continue
        match = KEY.match(line)
        if not match or match["key"] == "defaults":
            comment = [] if not stripped else comment
            continue
        depth = len(match["indent"]) // 2
        stack = [*stack[:depth], match["key"]]
        value, _, inline = match["value"].partition(" #")
        text = " ".join([*comment, inline.strip()]).strip()
        if stack[0] != "hydra":
            out.append(Key(".".join(stack), value.strip(), text))
        comment = []
    return out


@dataclass(frozen=True)
class Command:
    config: str  # the primary config's path under conf/
    about: str
    recipes: tuple[tuple[str, str], ...]  # (command line, what it does)


# fmt: off
COMMANDS = {
    "forecast-train": Command("config.yaml", "train a model, tracked in MLflow", (
        ("forecast-train data=csv data.path=my.csv data.horizon=24",
         "a CSV of your own: columns date + numbers"),
        ("forecast-train data=csv data.path=sales.parquet data.timestamp=ds data.series_id=id "
         "'data.future_covariates=[price]' data.calendar=[dayofweek]",
         "many series, inputs known ahead"),
        ("forecast-train model=segment_lstm model.hidden_size=128 ensemble.size=3",
         "the tuned model, three seeds combined"),
        ("forecast-train experiment=etth1_h96", "a published benchmark preset"),
        ("forecast-train -m hparams_search=lstm_optuna", "an Optuna sweep, a run per trial"),
    )),
    "forecast-check": Command("check.yaml", "check a table as training would read it", (
        ("forecast-check data=csv data.path=my.csv",
         "what the loader sees, and the keys that fix it"),
    )),
    "forecast-eval": Command("eval.yaml", "score a saved model next to the baselines", (
        ("forecast-eval ckpt_path=logs/runs/<run>/model.pt", "its test split"),
        ("forecast-eval ckpt_path=runs:/<id> data_path=other.csv", "another file"),
        ("forecast-eval ckpt_path=... backtest.stride=24 backtest.start=2017-10-01",
         "a backtest over rolling origins"),
    )),
    "forecast-predict": Command("serving/predict.yaml", "forecast every series of a file", (
        ("forecast-predict ckpt_path=model.pt input=history.csv output=forecast.csv",
         "the next horizon steps of each series"),
        ("forecast-predict ckpt_path=models:/forecast-my/1 input=h.parquet future=f.csv",
         "a registered model with future covariates"),
    )),
    "forecast-serve": Command("serving/serve.yaml", "serve forecasts over HTTP", (
        ("forecast-serve ckpt_path=model.pt port=8000",
         "POST /forecast, GET /metadata, OpenAPI at /docs"),
    )),
    "forecast-export": Command("serving/export.yaml", "write TorchScript or ONNX", (
        ("forecast-export ckpt_path=model.pt format=onnx", "model.onnx, scaler included"),
    )),
}
# fmt: on


def _defaults(path: Path) -> list[str | dict]:
    try:
        return (yaml.safe_load(path.read_text()) or {}).get("defaults") or []
    except yaml.YAMLError:
        return []


def _global(path: Path) -> bool:
    return "# @package _global_" in path.read_text()


def _included(path: Path, entry: str | dict) -> Path | None:
    """The sibling file a defaults entry names alone (``- csv``, ``- config``), if any."""
    if not isinstance(entry, str) or entry == "_self_":
        return None
    sibling = path.parent / f"{entry}.yaml"
    return sibling if sibling.is_file() else None


def file_keys(path: Path) -> dict[str, Key]:
    """A config file's keys with those of the files its defaults list includes by name (a
    preset built on another), its own last: the values it ends with."""
    out: dict[str, Key] = {}
    for entry in _defaults(path):
        if included := _included(path, entry):
            out |= file_keys(included)
    for key in keys(path):
        kept = out.get(key.path)
        out[key.path] = Key(key.path, key.default, key.comment or (kept.comment if kept else ""))
    return out


def command_keys(config: Path) -> tuple[dict[str, Key], dict[str, list[str]]]:
    """A primary config's keys, with each config group of its defaults list dotted under the
    group (the default option's values, then keys only other options have), and the groups
    with their options (``data: [csv, etth1, ettm1]``)."""
    out = dict(file_keys(config))
    groups: dict[str, list[str]] = {}
    for entry in _defaults(config):
        if included := _included(config, entry):
            inner, more = command_keys(included)
            out, groups = inner | out, more | groups
        if not isinstance(entry, dict):
            continue
        ((group, option),) = entry.items()
        folder = config.parent / group
        if group.startswith(("override", "hydra")) or not folder.is_dir():
            continue
        files = sorted(folder.glob("*.yaml"))
        groups[group] = [f.stem for f in files]
        ordered = [f for f in files if f.stem == option] + [f for f in files if f.stem != option]
        for file in ordered:
            if _global(file):
                continue
            for key in file_keys(file).values():
                path = f"{group}.{key.path}"
                out.setdefault(path, Key(path, key.default, key.comment))
    return out, groups


def help_text(command: str) -> str:
    """What ``<command> --help`` prints: what it does, recipes, groups and every key."""
    spec = COMMANDS[command]
    found, groups = command_keys(Path(CONF_DIR) / spec.config)
    lines = [f"{command}: {spec.about}. Any key below is set as key=value.", "", "Recipes:"]
    for line, what in spec.recipes:
        lines += [f"  {line}", f"      {what}"]
    if groups:
        lines += ["", "Config groups (group=option):"]
        lines += [f"  {group}: {', '.join(options)}" for group, options in groups.items()]
    lines += ["", "Keys, their defaults and what they do (docs/reference has each in full):"]
    shown = [
        key for key in found.values()
        if not key.path.endswith(("._target_", "._partial_"))  # Hydra's instantiation keys
        and not (key.default in ("", "{}") and any(k.startswith(key.path + ".") for k in found))
    ]  # fmt: skip
    width = min(max(len(key.path) for key in shown), 28)  # a longer one pushes its line
    for key in shown:
        default = {"???": "(required)", "": "null"}.get(key.default, key.default)
        default = default if len(default) <= 16 else default[:13] + "..."
        line = f"  {key.path:<{width}}  {default:<16}  {key.summary}".rstrip()
        lines.append(line if len(line) <= LINE else line[: LINE - 3] + "...")
    return "\n".join(lines)


def unknown_key(command: str, args: list[str]) -> str | None:
    """A message for the first ``key=value`` argument that names no key of ``command``, with
    the nearest valid names; None when all are known. Hydra's own syntax passes untouched:
    flags, ``+key`` (added), ``~key`` (deleted), ``hydra.*`` and ``group/option``."""
    spec = COMMANDS[command]
    found, groups = command_keys(Path(CONF_DIR) / spec.config)
    for arg in args:
        key, equals, _ = arg.partition("=")
        if not equals or arg.startswith(("-", "+", "~")) or "/" in key or key.startswith("hydra"):
            continue
        if key in found or key in groups or _free_mapping(key, found):
            continue
        names = [*found, *groups]
        near = difflib.get_close_matches(key, names, 3, 0.8) or (
            difflib.get_close_matches(key, names, 1, 0.6)
        )
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        return f"{key} is not a key of {command}{hint} ({command} --help lists every key)"
    return None


def _free_mapping(key: str, found: dict[str, Key]) -> bool:
    """Whether ``key`` lies within a mapping the config leaves open (``{}``, or null), or is a
    mapping that holds known keys (``model.optimizer``)."""
    parts = key.split(".")
    if any(k.startswith(key + ".") for k in found):
        return True
    return any(
        ".".join(parts[:n]) in found and found[".".join(parts[:n])].default in ("{}", "null")
        for n in range(1, len(parts))
    )
