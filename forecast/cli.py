"""The commands' entry points (``[project.scripts]``): ``--help`` and a mistyped key are
answered from ``conf/``'s comments before anything heavy is imported (forecast.reference);
otherwise each imports its module with the cyclic garbage collector paused, then runs it.

Measured on the default run (docs/benchmarks/index.md, "Whole runs"): the collector rescans every
object of torch, Lightning and MLflow as they import, about a third of the import time, and
once more at interpreter exit, over a second. Paused during the imports and with the imported
objects frozen out of later passes (``gc.freeze``: they live as long as the process anyway),
a command starts and ends that much sooner; training's own garbage is collected as before.
"""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Callable

from forecast.reference import help_text, unknown_key


def _run(module: str, name: str) -> Callable[[], object]:
    def command() -> object:
        args = sys.argv[1:]
        if "--help" in args or "-h" in args:
            print(help_text(name))
            return None
        if problem := unknown_key(name, args):
            print(f"error: {problem}", file=sys.stderr)
            raise SystemExit(1)
        gc.disable()
        try:
            main = importlib.import_module(module).main
        finally:
            gc.freeze()
            gc.enable()
        return main()

    return command


train = _run("forecast.train", "forecast-train")
check = _run("forecast.check", "forecast-check")
evaluate = _run("forecast.evaluate", "forecast-eval")
predict = _run("forecast.predict", "forecast-predict")
serve = _run("forecast.serve", "forecast-serve")
export = _run("forecast.export", "forecast-export")
