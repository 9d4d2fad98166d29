"""`fs`: the feature store's command line. Each command does one thing through the SDK (fs_cli.sdk); output as a
table, --json, or --csv for listings (fs_cli/commands/_output.py).

Start-up is part of every command's cost, so this module imports only click: a command's module (and with it dbt,
Soda, pandas, DuckDB, FastAPI, whatever that command needs) is imported when that command runs, and `fs --help` /
`fs --version` import none (tests/test_cli_imports.py checks it).
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from . import __version__

# The whole command line, in one place: name -> (where the command is defined, its one-line help for `fs --help`).
# Adding a command is one line here. The help must be the command's own short help (its docstring's first
# sentence); tests/test_cli_imports.py compares them, so `fs --help` never has to import the command to show it.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("fs_cli.commands.pipeline:run", "Run the feature pipeline: build, test, publish, log commits."),
    "list": ("fs_cli.commands.catalog:list_cmd",
             "List feature groups and feature views, with their latest commit and row count."),
    "describe": ("fs_cli.commands.catalog:describe", "Describe a feature group (features, keys, TTL, owner, lineage, "
                 "commits) or a feature view."),
    "search": ("fs_cli.commands.catalog:search", "Find features, feature groups and views whose name, description, "
               "tags or owner contain TEXT."),
    "commits": ("fs_cli.commands.history:commits",
                "The commit log of a feature group: every publish that changed data."),
    "read": ("fs_cli.commands.history:read",
             "Read a feature group as published now, at a commit, or as of a time (time travel)."),
    "plan": ("fs_cli.commands.plan:plan", "Compare the project with the deployed manifest: what changes, what depends on it, what would break."),  # noqa: E501
    "materialize": ("fs_cli.commands.online:materialize", "Write the latest value per entity (within TTL) of online "
                    "feature groups into the online store."),
    "serve": ("fs_cli.commands.online:serve", "Serve online features over HTTP (OpenAPI page at /docs)."),
    "keys": ("fs_cli.commands.keys:keys", "Scoped API keys of `fs serve` / `fs ui`, stored hashed in .fs/api_keys.json."),
    "contract": ("fs_cli.commands.validation:contract", "Print the Soda data contract of a feature group (generated "
                 "from its YAML, plus the hand-written part)."),
    "validations": ("fs_cli.commands.validation:validations", "Validation history of a feature group (or feature "
                    "view): every check of every candidate, newest first."),
    "validate": ("fs_cli.commands.validation:validate", "Audit a feature group's current candidate (its built dbt "
                 "model) without publishing it, or check the correlation limits (feature-label, pairwise) of a "
                 "feature view."),
    "model": ("fs_cli.commands.models:model",
              "The model registry: immutable, hash-verified model versions linked to their training data."),
    "impact": ("fs_cli.commands.models:impact", "What used FEATURE_GROUP: feature views, training datasets and models."),
    "training-dataset": ("fs_cli.commands.training:training_dataset", "Immutable, numbered training datasets of a "
                         "feature view (point-in-time join over its label spine)."),
    "monitor": ("fs_cli.commands.monitoring:monitor",
                "Model feature drift: logged vectors vs the training dataset, per feature."),
    "ui": ("fs_cli.commands.ui:ui", "Browse the feature store in a web browser: a read-only UI at http://HOST:PORT/ui/."),
    "check": ("fs_cli.commands.monitoring:check", "Freshness (read-only, cron-safe): last commit and online copy of "
              "each feature group vs its declared `freshness`."),
    "logs": ("fs_cli.commands.monitoring:logs", "Inference logs as data: load the served-vector and prediction "
             "logs into fs_meta tables (models/monitoring/)."),
    "erase": ("fs_cli.commands.governance:erase", "Erase entities' feature values through the whole history: every "
              "commit, training datasets, the online store and the logs."),
    "report": ("fs_cli.commands.monitoring:report",
               "Write a self-contained HTML monitoring report (inline SVG charts, nothing loaded from the network)."),
}

# Hooks run with the group once a command is loaded: fs_cli.commands.monitoring adds `--spine` to `fs model score`.
EXTENSIONS: dict[str, list[str]] = {
    "model": ["fs_cli.commands.monitoring:register"],
}


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class FSGroup(click.Group):
    """`fs`: loads a command when it runs (COMMANDS), and turns user errors into a clear message and exit code 2,
    without a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            self.commands[name] = _load(COMMANDS[name][0])
            for hook in EXTENSIONS.get(name, []):
                _load(hook)(self)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Like click's, from COMMANDS' help for commands not loaded yet (no import for `fs --help`)."""
        names = [n for n in self.list_commands(ctx) if n in COMMANDS or not self.commands[n].hidden]
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        shown = {n: self.commands.get(n) or click.Command(n, help=COMMANDS[n][1]) for n in names}
        rows = [(n, cmd.get_short_help_str(limit)) for n, cmd in shown.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, FeatureStoreError

        try:
            return super().invoke(ctx)
        except FeatureStoreError as e:
            from .output import print_error

            print_error(e.message, e.fix, verbose=_verbose(ctx))
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            from .output import print_error

            print_error("interrupted", None)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as e:  # noqa: BLE001 - a bug, not a user error: its own exit code, the traceback kept
            from .output import print_internal_error

            print_internal_error(e)
            sys.exit(EXIT_INTERNAL)


def _store_factory(project_dir: str | None, target: str | None):
    def make():
        from .sdk import FeatureStore  # the SDK (and what it needs) only once a command asks for the store

        return FeatureStore(project_dir, target=target)

    return make


def _verbose(ctx: click.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("verbose"))


# Kept in step with fs_cli/errors.py (EXIT_*) and the README's exit-code table (tests/test_cli_messages.py).
EXIT_CODES_HELP = """\b
Exit codes:
  0    success
  1    it ran and found a problem: a failed feature group or check (run,
       validate, model validate), drift or staleness (monitor, check,
       model monitor), a breaking change (plan)
  2    bad usage, or a problem to fix first: an unknown option or name, an
       invalid declaration, nothing built yet, a locked warehouse (`fix:`
       under the message says how)
  3    internal error (a bug): the traceback is printed (and logged)
  130  interrupted (Ctrl-C)
"""


@click.group(cls=FSGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
             epilog=EXIT_CODES_HELP)
@click.version_option(__version__, "--version", "-V", prog_name="fs", message="%(prog)s %(version)s")
@click.option("--project-dir", type=click.Path(file_okay=False), envvar="FS_PROJECT_DIR",
              help="The dbt project (default: the nearest dbt_project.yml at or above the current directory).")
@click.option("--target", envvar="FS_TARGET", help="dbt target from profiles.yml (default: duckdb).")
@click.option("--verbose", "-v", is_flag=True, envvar="FS_VERBOSE",
              help="More on stderr: every dbt node as it finishes, and the traceback behind an error.")
@click.option("--log-file", type=click.Path(dir_okay=False), envvar="FS_LOG_FILE",
              help="Append a log of this command (progress, warnings, errors with tracebacks, UTC timestamps).")
@click.pass_context
def main(ctx: click.Context, project_dir: str | None, target: str | None, verbose: bool,
         log_file: str | None) -> None:
    """A feature store that is a dbt project.

    \b
    Feature pipeline:   fs run            build, validate and publish feature groups (commits)
    Validation:         fs contract FG | validate FG|FV | validations FG
    Discovery:          fs list | describe NAME | search TEXT
    History:            fs commits FG | read FG --as-of/--commit
    Training data:      fs training-dataset create|list|show|export FV
    Online:             fs materialize [FG ...] | serve | keys create|list|revoke   (push: POST /push)
    Models:             fs model register|list|show|alias|best|validate|lineage|score|monitor | impact FG
    Monitoring:         fs monitor FV | check | logs | report
    Deploying:          fs plan --state PROD_MANIFEST_DIR
    Browsing:           fs ui
    \b
    Feature groups are dbt models under models/feature_groups/ with `config.meta.fs` in their YAML;
    publishing snapshots them, and every publish that changes data is a commit you can time-travel to.
    """
    ctx.obj = ctx.obj or {}
    # The CLI prints to the terminal itself (rich, stderr); its log records go only to --log-file. Without this, dbt
    # (which puts a handler on the root logger once imported) printed every error a second time.
    logging.getLogger("fs_cli").propagate = False
    ctx.obj.setdefault("factory", _store_factory(project_dir, target))
    ctx.obj["verbose"] = verbose
    if verbose or log_file:
        from .output import configure_logging

        configure_logging(verbose=verbose, log_file=log_file, argv=sys.argv[1:])
