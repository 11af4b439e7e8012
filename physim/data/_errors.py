"""The one exception type for unusable dataset files."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset file is missing, corrupt, foreign or does not match what was asked for.

    The message names the file (and the key or attribute at fault) and says what to do,
    e.g. "delete it and regenerate" or "choose another root".
    """
