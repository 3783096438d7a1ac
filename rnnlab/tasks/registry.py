"""The task registry (`rnnlab list tasks` prints it).

Its own module, not the package's __init__: each task module registers
itself here (`from .registry import TASKS`), so no task imports the package
that imports it. The package's __init__ imports every task module once,
which fills this table before anyone reads it.
"""

from ..registry import Registry

TASKS = Registry("task", "task.name")
