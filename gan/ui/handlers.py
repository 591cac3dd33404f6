"""What every handler uses: the decorator that shows the package's errors to visitors, and the checks of inputs as
sent (numbers and truncation), whose messages name the parameter."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable

import gradio as gr

from ..errors import GanError
from ..sampling import check_truncation
from .limits import MAX_TRUNCATION


def shows_errors(handler: Callable) -> Callable:
    """A handler whose GanError (any of the package's errors: ImageInputError, LatentError, HubError...) reaches the
    visitor as a gr.Error with the error's message for the web (`GanError.web`: one actionable line, without the
    command line's flags and environment variables), rather than as Gradio's bare "Error". The
    wrapper keeps the handler's name, docstring and signature (functools.wraps): Gradio reads the parameters and their
    annotations (gr.Request, gr.SelectData) from it, mcp.py the docstring (an MCP tool's description)."""

    if inspect.isgeneratorfunction(handler):  # a streaming handler raises while it is iterated

        @functools.wraps(handler)
        def streamed(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except GanError as error:
                raise gr.Error(error.web) from None

        return streamed

    @functools.wraps(handler)
    def shown(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except GanError as error:
            raise gr.Error(error.web) from None

    return shown


def finite_number(value) -> bool:
    """An int or a finite float: not a bool, a string, None, NaN or an infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def check_number(value, name: str, low: float, high: float, whole: bool = False) -> float:
    """A numeric input as sent: anything but a finite (whole) number gets the app's message, a number out of range
    Gradio's own words for it (what its components said before they left the checks to the handlers)."""
    if not finite_number(value) or (whole and value != int(value)):
        raise gr.Error(f"{name} must be {'a whole number' if whole else 'a number'} between {low} and {high}")
    if value < low:
        raise gr.Error(f"{name}: Value {value} is less than minimum value {low}")
    if value > high:
        raise gr.Error(f"{name}: Value {value} is greater than maximum value {high}")
    return value


def check_int(value, name: str, low: int, high: int) -> int:
    return int(check_number(value, name, low, high, whole=True))


def check_truncation_input(value) -> float | None:
    """The truncation input: a number in 0..MAX_TRUNCATION, then 0 (off) or at least the smallest truncation."""
    try:
        return check_truncation(check_number(value, "truncation", 0, MAX_TRUNCATION))
    except ValueError as error:
        raise gr.Error(str(error)) from None
