"""The one exception type users see: raised once, at the boundary, with a message that names
the file, column, value, shape or request and what was expected."""

from __future__ import annotations


class ForecastError(ValueError):
    """A problem with the user's input: a file, a column, a value, a shape or a request.

    The message names the thing and what was expected; it is shown as is, without a traceback.
    """
