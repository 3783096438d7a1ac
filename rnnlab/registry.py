"""Name -> class registries for architectures and tasks (the tables: models/registry.py ARCHS,
tasks/registry.py TASKS).

Adding an architecture or task is one new class with a decorator:

    @ARCHS.register("lstm", "Long short-term memory on torch's fused kernel")
    class LSTMModel(...): Options = LSTMOptions

`rnnlab list archs|tasks`, the config validation and the TUI pickers are all
generated from these tables, never from hand-written lists.
"""

from __future__ import annotations

from .errors import ConfigError


class Registry:
    def __init__(self, kind: str, key: str):
        self.kind = kind  # "architecture" / "task", for messages
        self.key = key  # the config key that selects an entry, e.g. "model.arch"
        self._entries: dict[str, type] = {}

    def register(self, name: str, summary: str):
        def decorate(cls: type) -> type:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            cls.registry_name = name
            cls.summary = summary
            self._entries[name] = cls
            return cls

        return decorate

    def get(self, name: str) -> type:
        if name not in self._entries:
            raise ConfigError(self.key, name, f"unknown {self.kind}", ", ".join(self.names()))
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, type]]:
        return [(name, self._entries[name]) for name in self.names()]
