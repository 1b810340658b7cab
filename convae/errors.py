"""The base class of convae's user-facing errors.

An error a user can act on (an invalid config value, a data file that is missing or
corrupt, a checkpoint refused, a run file that cannot be written, a diverged training, an
interrupted sweep job) derives from :class:`ConvaeError` as well as from its own base
(``ConfigError`` stays a ``ValueError``, ``RunFileError`` an ``OSError``), so ``except
ValueError`` still catches what it did. The console scripts print such an error as its
own message, in one line (``convae.config.errors.one_line``); any other exception is shown
with its type and a hint for the full traceback.
"""

from __future__ import annotations


class ConvaeError(Exception):
    """An error whose message alone says what is wrong and what to do."""
