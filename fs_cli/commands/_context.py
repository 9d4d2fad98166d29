"""The one door every command goes through: the `FeatureStore` (fs_cli.sdk) of the invocation, built once from the
root group's options (`--project-dir`, `--target`) by the factory `fs_cli.cli.main` puts in the click context."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..sdk import FeatureStore


def get_store(ctx: click.Context) -> FeatureStore:
    obj = ctx.find_root().obj
    if "store" not in obj:
        obj["store"] = obj["factory"]()
    return obj["store"]
