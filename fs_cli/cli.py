"""`fs`: the feature store's command line. Each command does one thing; listings take --json."""

from __future__ import annotations

import sys

import click

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


from .commands import catalog as _catalog_cmds  # noqa: E402
from .commands import history as _history_cmds  # noqa: E402
from .commands import pipeline as _pipeline_cmds  # noqa: E402

main.add_command(_pipeline_cmds.run)
main.add_command(_catalog_cmds.list_cmd)
main.add_command(_catalog_cmds.describe)
main.add_command(_catalog_cmds.search)
main.add_command(_history_cmds.commits)
main.add_command(_history_cmds.read)

from .commands import online as _online_cmds  # noqa: E402

main.add_command(_online_cmds.materialize)
main.add_command(_online_cmds.serve)

from .commands import validation as _validation_cmds  # noqa: E402

main.add_command(_validation_cmds.contract)
main.add_command(_validation_cmds.validations)
main.add_command(_validation_cmds.validate)

from .commands import models as _model_cmds  # noqa: E402

main.add_command(_model_cmds.model)
main.add_command(_model_cmds.impact)

from .commands import training as _training_cmds  # noqa: E402

main.add_command(_training_cmds.training_dataset)

from .commands.monitoring import register as _register_monitoring  # noqa: E402

_register_monitoring(main)  # fs monitor | check; fs model score --spine
