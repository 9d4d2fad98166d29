"""The demo: code that shows the feature store working on this repository's seeds, not part of the library.

- `tour`:    `make demo` / `python -m fs_cli.demo`: every step is an `fs ...` command, printed before it runs
- `train`:   a data scientist's training script against the SDK (train, register, validate, promote, score)
- `request`: a model service's HTTP lookup against a running `fs serve`

Nothing in the library imports this package.
"""
