"""Errors that reach the user as one clean line (never a traceback)."""

import errno


class RnnlabError(Exception):
    """Base class: the CLI prints str(error) on one line and exits with `exit_code`."""

    exit_code = 1


class ConfigError(RnnlabError):
    """A bad key or value in an experiment config (or a bad command-line option).

    The message always names the key, the value and what is allowed, so a user
    can fix the file without reading the source.
    """

    exit_code = 2

    def __init__(self, key: str, value, problem: str, allowed: str | None = None):
        self.key, self.value, self.problem, self.allowed = key, value, problem, allowed
        shown = "(missing)" if value is _MISSING else repr(value)
        message = f"{key} = {shown}: {problem}"
        if allowed:
            message += f"; allowed: {allowed}"
        super().__init__(message)


class RunNotFound(RnnlabError):
    """RUN did not name exactly one run directory."""

    exit_code = 2


class SweepNotFound(RnnlabError):
    """SWEEP did not name exactly one sweep record."""

    exit_code = 2


class CorruptRun(RnnlabError):
    """A file of a run directory is not what docs/run-directory.md says, for a command that acts on it."""

    exit_code = 2


class RunIsLive(RnnlabError):
    """The command needs a run that is not running (its trainer is alive)."""

    exit_code = 2


class CheckpointError(RnnlabError):
    """A checkpoint is missing, unreadable, or does not match the run's config."""

    exit_code = 2


def first_line(error: Exception) -> str:
    """An exception's first line, or its class when it has no message (torch raises some empty)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else error.__class__.__name__


_MISSING = object()
MISSING = _MISSING


def describe_os_error(error: OSError) -> str:
    """`disk full writing PATH: No space left on device`: what failed, where, and nothing else."""
    reason = error.strerror or error.__class__.__name__
    where = f" {error.filename}" if error.filename else ""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"disk full{' writing' + where if where else ''}: {reason}; files already written are intact "
                "(free space, then `rnnlab run --resume RUN` continues a run)")
    return f"cannot use{where or ' a file'}: {reason}"
