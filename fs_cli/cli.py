"""`fs`: the feature store's command line. Each command does one thing through the SDK (fs_cli.sdk); output as a
table, --json, or --csv for listings (fs_cli/commands/_output.py)."""

from __future__ import annotations

import sys

import click

from .commands import catalog, history, models, monitoring, online, pipeline, training, validation
from .errors import FeatureStoreError
from .output import err_console


class FSGroup(click.Group):
    """Turns user errors into a clear message and exit code 2, without a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FeatureStoreError as e:
            err_console.print(f"[bold red]error:[/] {e.message}", highlight=False)
            if e.fix:
                err_console.print(f"  [bold]fix:[/] {e.fix}", highlight=False)
            sys.exit(2)


@click.group(cls=FSGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--project-dir", type=click.Path(file_okay=False), envvar="FS_PROJECT_DIR",
              help="The dbt project (default: the nearest dbt_project.yml at or above the current directory).")
@click.option("--target", envvar="FS_TARGET", help="dbt target from profiles.yml (default: duckdb).")
@click.pass_context
def main(ctx: click.Context, project_dir: str | None, target: str | None) -> None:
    """A feature store that is a dbt project.

    \b
    Feature pipeline:   fs run            build, validate and publish feature groups (commits)
    Validation:         fs contract FG | validate FG|FV | validations FG
    Discovery:          fs list | describe NAME | search TEXT
    History:            fs commits FG | read FG --as-of/--commit
    Training data:      fs training-dataset create|list|show|export FV
    Online:             fs materialize [FG ...] | serve
    Models:             fs model register|list|show|alias|best|validate|lineage | impact FG
    \b
    Feature groups are dbt models under models/feature_groups/ with `config.meta.fs` in their YAML;
    publishing snapshots them, and every publish that changes data is a commit you can time-travel to.
    """
    from .sdk import FeatureStore

    ctx.obj = ctx.obj or {}
    ctx.obj.setdefault("factory", lambda: FeatureStore(project_dir, target=target))


# The whole command line, in one place (the command modules never import this one).
for _command in (
    pipeline.run, catalog.list_cmd, catalog.describe, catalog.search, history.commits, history.read,
    online.materialize, online.serve, validation.contract, validation.validations, validation.validate,
    models.model, models.impact, training.training_dataset,
):
    main.add_command(_command)
monitoring.register(main)  # fs monitor | check; fs model score --spine
