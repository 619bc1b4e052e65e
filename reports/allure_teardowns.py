"""Fixture teardowns in Allure under a real name and with their outcome, never as `<lambda>` without a status.

allure-pytest reports each finalizer a fixture holds after its setup as a teardown named `<fixture>::<__name__>`.
pytest's first finalizer of every fixture is its own lambda calling pytest_fixture_post_finalizer, in which
allure-pytest writes the fixture's container: reported, it is a `<lambda>` teardown left without a status (four
per chaos test). Two wrappers around allure-pytest's pytest_fixture_setup keep that lambda out of its hands (taken
out inside it, before it wraps the finalizers; put back outside it, after) and name the nameless finalizers (a
yield fixture's teardown, a lambda) `teardown`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

PLUGIN_NAME = "resilience-allure-teardowns"
Finalizer = Callable[[], object]


def is_post_finalizer(finalizer: Finalizer) -> bool:
    """pytest's own hook caller, registered first on every fixture (pytest >= 8.1): no teardown of the fixture."""
    return getattr(finalizer, "__name__", None) == "<lambda>" and finalizer.__module__ == "_pytest.fixtures"


def named(finalizer: Finalizer) -> Finalizer:
    """The finalizer under a name (allure-pytest shows a partial's index, a lambda's `<lambda>`)."""

    def teardown() -> object:
        return finalizer()

    return teardown


class _Inside:
    """Runs before allure-pytest wraps the fixture's finalizers."""

    def __init__(self, held: dict[int, Finalizer]) -> None:
        self.held = held

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
            finalizers: list[Finalizer] = getattr(fixturedef, "_finalizers", [])
            if finalizers and is_post_finalizer(finalizers[0]):
                self.held[id(fixturedef)] = finalizers.pop(0)
            for index, finalizer in enumerate(finalizers):
                if getattr(finalizer, "__name__", "<lambda>") == "<lambda>":
                    finalizers[index] = named(finalizer)


class _Outside:
    """Runs after allure-pytest wrapped them: pytest's hook caller goes back first (so it runs last)."""

    def __init__(self, held: dict[int, Finalizer]) -> None:
        self.held = held

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
            held = self.held.pop(id(fixturedef), None)
            if held is not None:
                fixturedef._finalizers.insert(0, held)


def register(config: pytest.Config) -> None:
    """Both wrappers, sharing what the inner one took out (with --alluredir, where allure-pytest wraps)."""
    held: dict[int, Finalizer] = {}
    config.pluginmanager.register(_Inside(held), f"{PLUGIN_NAME}-inside")
    config.pluginmanager.register(_Outside(held), f"{PLUGIN_NAME}-outside")


def unregister(config: pytest.Config) -> None:
    for suffix in ("inside", "outside"):
        plugin = config.pluginmanager.get_plugin(f"{PLUGIN_NAME}-{suffix}")
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
