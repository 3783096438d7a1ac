"""The architecture registry (`rnnlab list archs` prints it).

Its own module, not the package's __init__: each model module registers
itself here (`from .registry import ARCHS`), so no model imports the package
that imports it. The package's __init__ imports every model module once,
which fills this table before anyone reads it.
"""

from ..registry import Registry

ARCHS = Registry("architecture", "model.arch")
