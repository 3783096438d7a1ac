"""The Textual app: the only package of rnnlab that imports textual."""

from .app import RnnlabApp, make_app

__all__ = ["RnnlabApp", "make_app"]
