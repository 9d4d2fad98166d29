"""fs erase: erasure of an entity through the whole history (fs_cli/erasure.py, FeatureStore.erase)."""

from __future__ import annotations

import sys

import click

from ..errors import FeatureStoreError
from ..output import console, err_console
from ._context import get_store
from ._output import Listing, Output, output_options


@click.command()
@click.argument("targets", nargs=-1, metavar="ENTITY=KEY...")
@click.option("--reason", help="Why (recorded with the event, e.g. a ticket id).")
@click.option("--actor", help="Who asked (recorded; default: the OS user running fs).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--list", "list_events", is_flag=True, help="List the recorded erasures instead of erasing.")
@output_options()
@click.pass_context
def erase(ctx: click.Context, targets: tuple[str, ...], reason: str | None, actor: str | None, yes: bool,
          list_events: bool) -> Output:
    """Erase entities' feature values through the whole history: every commit, training datasets, the online store and the logs.

    Example: `fs erase customer=42 customer=43 --reason TICKET-7 --yes`.

    \b
    What is erased (set to NULL or removed):
      - every snapshot version (all commits) of every feature group keyed by the entity, so `fs read --commit N`,
        `--as-of`, the BI views (<schema>_published / _history) and training reads no longer see the values;
      - candidates, audited copies and pushed rows (fs_push.<group>) of those groups;
      - training datasets: rows whose spine key is the entity (features, labels and extra spine columns);
      - the online store (SQLite or Redis): the entity's keys in the serving version;
      - served-vector and prediction logs (JSONL files under .fs/, rewritten atomically) and their fs_meta tables;
      - unpublished rows of the entity in the push log.
    \b
    What is kept: the rows themselves with their key, event time and commit time, so every commit keeps its id
    and its inserted/updated/deleted/row counts. The erased keys are recorded in fs_meta.erased_keys and every
    later publish (fs run or plain dbt snapshot) redacts them again, without a new commit.
    The event (who, when, why, entity, key count and hash, rows per location; never values) goes to
    fs_meta.erasures: `fs erase --list`.
    \b
    Not done by fs: deleting the entity in the upstream sources (seeds, source tables), files you exported
    (`fs training-dataset export`), and models already trained on the data. A warning names the groups whose
    candidate still held the entity.
    """
    store = get_store(ctx)
    if list_events:
        if targets:
            raise click.UsageError("--list takes no ENTITY=KEY")
        events = store.erasures()
        rows = [{**e, "locations": ", ".join(f"{k}={v}" for k, v in sorted(e["locations"].items()))}
                for e in events]
        return Listing(data=events, rows=rows, columns=["erasure_id", "entity", "key_count", "erased_at", "actor",
                                                        "reason", "locations"],
                       title="erasures", empty="no erasure recorded")
    if not targets:
        raise FeatureStoreError("nothing to erase", fix="name the keys, e.g. `fs erase customer=42`, or --list")
    if not yes:
        if not sys.stdin.isatty():
            raise FeatureStoreError("fs erase changes history irreversibly and needs a confirmation",
                                    fix="pass --yes")
        click.confirm(f"Erase {', '.join(targets)} from every commit, training dataset, the online store and the "
                      "logs? This cannot be undone", abort=True)
    report = store.erase(list(targets), reason=reason, actor=actor)

    def show() -> None:
        console.print(f"erasure {report.erasure_id}: "
                      + ", ".join(f"{n} {e} key(s)" for e, n in report.entities.items())
                      + f" by {report.actor} at {report.erased_at:%Y-%m-%d %H:%M:%S}", highlight=False)
        for where, n in sorted(report.locations.items()):
            console.print(f"  {where}: {n}", highlight=False)
        for w in report.warnings:
            err_console.print(f"warning: {w}", style="yellow", highlight=False)

    return Output(data=report.to_dict(), show=show)
