"""The task package: importing it registers every task in TASKS (tasks/registry.py)."""

from .registry import TASKS

# each import registers its tasks
from . import charlm  # noqa: E402,F401,I001
from . import memory  # noqa: E402,F401,I001
from . import labelling  # noqa: E402,F401,I001
from . import synthetic  # noqa: E402,F401,I001
from . import timeseries, series_file  # noqa: E402,F401,I001
from . import seq2seq, dates, translation  # noqa: E402,F401,I001
from . import listops  # noqa: E402,F401,I001
from . import scenes  # noqa: E402,F401,I001
from .base import Task  # noqa: E402


def build_task(options, seed: int) -> Task:
    """Instantiate (and load the data of) the task that `options.name` names."""
    return TASKS.get(options.name)(options, seed)


__all__ = ["TASKS", "Task", "build_task"]
