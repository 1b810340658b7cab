"""What convae silences of the libraries it drives, and what it leaves alone
(convae/tracking/console.py)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import pytest

from convae.tracking import console

HYDRA_SCHEMA = (
    "\n'hydra/launcher/joblib' is validated against ConfigStore schema with the same name.\n"
    "This behavior is deprecated in Hydra 1.1 and will be removed in Hydra 1.2."
)
PYTREE = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)`"


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[warnings.WarningMessage]]:
    """quiet_libraries() installed inside catch_warnings (the session's filters come back);
    yields the warnings that got through. The tip filters it adds are removed after."""
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    loggers = [logging.getLogger(name) for name in console._RANK_ZERO_LOGGERS]
    before = [list(logger.filters) for logger in loggers]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        console.quiet_libraries()
        yield seen
    for logger, filters in zip(loggers, before, strict=True):
        logger.filters[:] = filters


def test_the_libraries_warnings_convae_causes_are_silenced_and_a_users_own_still_show(quiet):
    warnings.warn(HYDRA_SCHEMA, UserWarning, stacklevel=1)
    warnings.warn(PYTREE, FutureWarning, stacklevel=1)
    warnings.warn("The `srun` command is available on your system but is not used.",
                  UserWarning, stacklevel=1)  # fmt: skip
    warnings.warn("my own deprecation", DeprecationWarning, stacklevel=1)
    warnings.warn("my own future change", FutureWarning, stacklevel=1)
    # the same Hydra warning for a user's own config is the user's to act on
    warnings.warn(HYDRA_SCHEMA.replace("launcher/joblib", "launcher/mine"), UserWarning,
                  stacklevel=1)  # fmt: skip
    assert [str(w.message).strip().splitlines()[0] for w in quiet] == [
        "my own deprecation", "my own future change",
        "'hydra/launcher/mine' is validated against ConfigStore schema with the same name.",
    ]  # fmt: skip


def test_lightnings_tips_are_dropped_and_its_other_info_lines_kept(quiet):
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(console._RANK_ZERO_LOGGERS[0])
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        logger.info("💡 Tip: For seamless cloud logging and experiment tracking, try ...")
        logger.info("GPU available: False, used: False")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert seen == ["GPU available: False, used: False"]


def test_convae_verbose_keeps_every_warning(monkeypatch):
    monkeypatch.setenv(console.VERBOSE_ENV, "1")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        console.quiet_libraries()
        warnings.warn(PYTREE, FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == [PYTREE]
