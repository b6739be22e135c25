"""The one exception type users see, and the CLI boundary that turns it into an exit code."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

log = logging.getLogger(__name__)


class ForecastError(ValueError):
    """A problem with the user's input: a file, a column, a value, a shape or a request.

    The message names the thing and what was expected; it is shown as is, without a traceback.
    """


def exit_on_error(func: Callable[..., Any]) -> Callable[..., Any]:
    """Report a ForecastError as one line on stderr and exit 1 instead of a traceback.

    In a multirun the error is re-raised instead: Hydra records the job as failed and the
    sweep goes on with the next trial, where exiting would end the whole sweep.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ForecastError as err:
            if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
                raise
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper
