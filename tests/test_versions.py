"""`versions.latest_or_version`, the one "latest, or version N" lookup of training datasets and model versions, against
a brute-force oracle; and the errors its two callers raise with it (what they said before it was shared)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fs_cli.errors import FeatureStoreError
from fs_cli.versions import latest_or_version


@dataclass
class Item:
    version: int
    active: bool = True


class Unknown(FeatureStoreError):
    pass


class NoLatest(FeatureStoreError):
    pass


def lookup(items: list[Item], version: int | None) -> Item:
    return latest_or_version(items, version, may_be_latest=lambda i: i.active,
                             unknown=lambda existing: Unknown("unknown", fix=existing),
                             no_latest=lambda: NoLatest("none"))


@given(st.lists(st.booleans(), max_size=6).flatmap(
    lambda flags: st.tuples(st.just(flags), st.none() | st.integers(0, len(flags) + 1))))
def test_against_brute_force(case):
    flags, version = case
    items = [Item(v, active) for v, active in enumerate(flags, 1)]  # versions 1..n, in order
    if version is None:
        active = [i for i in items if i.active]
        if not active:
            with pytest.raises(NoLatest):
                lookup(items, version)
        else:
            assert lookup(items, version) is max(active, key=lambda i: i.version)
    elif 1 <= version <= len(items):
        assert lookup(items, version) is items[version - 1]  # found whether the latest may be it or not
    else:
        with pytest.raises(Unknown) as e:
            lookup(items, version)
        assert e.value.fix == ", ".join(str(v) for v in range(1, len(items) + 1))


def test_the_training_dataset_errors(monkeypatch):
    from fs_cli.training import store

    monkeypatch.setattr(store, "list_tds", lambda wh, fv: [])
    with pytest.raises(FeatureStoreError, match="feature view fv has no training datasets") as e:
        store.get_td(None, "fv", 3)
    assert "fs training-dataset create fv" in e.value.fix
    monkeypatch.setattr(store, "list_tds", lambda wh, fv: [Item(1), Item(2)])
    assert store.get_td(None, "fv").version == 2 and store.get_td(None, "fv", 1).version == 1
    with pytest.raises(FeatureStoreError, match=r"training dataset fv:5 does not exist") as e:
        store.get_td(None, "fv", 5)
    assert e.value.fix == "existing versions: 1, 2"
