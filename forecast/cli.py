"""The commands' entry points (``[project.scripts]``): each imports its module with the cyclic
garbage collector paused, then runs it.

Measured on the default run (docs/benchmarks/index.md, "Whole runs"): the collector rescans every
object of torch, Lightning and MLflow as they import, about a third of the import time, and
once more at interpreter exit, over a second. Paused during the imports and with the imported
objects frozen out of later passes (``gc.freeze``: they live as long as the process anyway),
a command starts and ends that much sooner; training's own garbage is collected as before.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable


def _run(module: str) -> Callable[[], object]:
    def command() -> object:
        gc.disable()
        try:
            main = importlib.import_module(module).main
        finally:
            gc.freeze()
            gc.enable()
        return main()

    return command


train = _run("forecast.train")
check = _run("forecast.check")
evaluate = _run("forecast.evaluate")
predict = _run("forecast.predict")
serve = _run("forecast.serve")
export = _run("forecast.export")
