"""The model package: importing it registers every architecture in ARCHS (models/registry.py)."""

from .registry import ARCHS

# each import registers its architectures
from . import fused  # noqa: E402,F401,I001
from . import custom  # noqa: E402,F401,I001
from . import deep, bidirectional  # noqa: E402,F401,I001
from . import seq2seq  # noqa: E402,F401,I001
from . import caption  # noqa: E402,F401,I001
from . import esn  # noqa: E402,F401,I001
from . import delay, clockwork  # noqa: E402,F401,I001
from . import ntm  # noqa: E402,F401,I001
from . import jordan  # noqa: E402,F401,I001
from . import trees  # noqa: E402,F401,I001
from .base import SequenceModel, TaskSpec, count_parameters, detach_state  # noqa: E402


def build_model(options, spec: TaskSpec) -> SequenceModel:
    """Instantiate the architecture that `options.arch` names."""
    return ARCHS.get(options.arch)(options, spec)


__all__ = ["ARCHS", "SequenceModel", "TaskSpec", "build_model", "count_parameters", "detach_state"]
