"""The web UI's HTTP side: a FastAPI router that renders the page dicts of fs_cli/ui/pages.py as HTML (Jinja2
templates, inline SVG charts from fs_cli/ui/charts.py, one packaged stylesheet) and serves the same dicts as JSON at
`<page URL>.json`.

Why the UI is its own app (`fs ui`) or an opt-in of `fs serve`: the online service never opens the warehouse (its
invariant: it serves what was materialized into the online store, fast, and keeps working when the warehouse is
down or busy). The UI reads the warehouse (commits, validation results, training datasets, the registry), so it is
off in `fs serve` unless FS_UI_PROJECT_DIR names the project to show (`create_app` calls `include_ui`), and `fs ui`
runs it alone. Both sit behind the same API-key check (`_Edge` of fs_cli/server/app.py, keys from FS_API_KEYS).

Nothing is fetched at view time: no CDN, no script, no font; the CSS is served from this package.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..errors import FeatureStoreError
from . import charts, pages

if TYPE_CHECKING:
    from ..sdk import FeatureStore

HERE = Path(__file__).resolve().parent
PREFIX = "/ui"
#: Environment switch of `fs serve`: the project whose warehouse /ui reads (unset: no UI, the server stays
#: warehouse-free).
UI_PROJECT_ENV = "FS_UI_PROJECT_DIR"
#: FS_UI_CACHE=0: build every page from the warehouse on every view (the benchmark's cold numbers).
CACHE_ENV = "FS_UI_CACHE"


def _templates():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                             autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["url"] = lambda s: quote(str(s), safe="")
    env.filters["short"] = lambda s, n=19: "" if s is None else str(s)[:n]
    env.filters["num"] = _num
    env.globals["prefix"] = PREFIX  # the macros of _macros.html are imported without the page's context
    return env


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class StoreHolder:
    """One FeatureStore for the app, rebuilt when the dbt manifest changes (a new feature group appears without a
    restart), and the page dicts it built, reused while the store's data stamp (`warehouse.data_stamp`: the
    embedded DuckDB file's size and mtime, no open) and the manifest are unchanged. A target without a cheap stamp
    (a server) is read again on every view. Page builds are serialized: the UI is for people, not traffic, and one
    embedded DuckDB file does not like a read-only and a read-write connection from the same process at once."""

    MAX_CACHED = 256

    def __init__(self, factory: Callable[[], FeatureStore]):
        self.factory = factory
        self.cache = os.environ.get(CACHE_ENV, "1").lower() not in ("0", "false", "no", "off")
        self.lock = threading.Lock()
        self._fs: FeatureStore | None = None
        self._manifest: float | None = None
        self._cache: dict[tuple, tuple[Any, dict[str, Any]]] = {}
        self.monitoring: tuple[float, bool] | None = None  # (when checked, monitoring tables exist)

    def _manifest_stamp(self, fs: FeatureStore) -> float | None:
        path = Path(fs.project.dir) / "target" / "manifest.json"
        try:
            return path.stat().st_mtime
        except OSError:
            return None

    def build(self, page: Callable[..., dict[str, Any]], *args: Any) -> Any:
        from ..warehouse import data_stamp

        with self.lock:
            if self._fs is None or self._manifest_stamp(self._fs) != self._manifest:
                self._fs = self.factory()
                self._manifest = self._manifest_stamp(self._fs)
                self._cache.clear()
            stamp = data_stamp(self._fs.project) if self.cache else None  # taken before reading: a write meanwhile means a re-read next time
            key = (page.__name__, *args)
            hit = self._cache.get(key)
            if stamp is not None and hit is not None and hit[0] == stamp:
                return hit[1]
            with self._fs.project.reading():  # one warehouse session for the whole page
                data = page(self._fs, *args)
            if stamp is not None:
                if len(self._cache) >= self.MAX_CACHED:
                    self._cache.clear()
                self._cache[key] = (stamp, data)
            return data


#: Seconds the answer "do monitoring tables exist" is reused for the navigation bar (one warehouse open less per page).
MONITORING_CHECK_SECONDS = 10.0


def _nav(holder: StoreHolder) -> list[tuple[str, str]]:
    items = [("Catalog", f"{PREFIX}/"), ("Training datasets", f"{PREFIX}/training-datasets"),
             ("Models", f"{PREFIX}/models")]
    now = time.monotonic()
    if holder.monitoring is None or now - holder.monitoring[0] > MONITORING_CHECK_SECONDS:
        try:
            holder.monitoring = (now, bool(holder.build(pages.monitoring_tables)))
        except FeatureStoreError:
            holder.monitoring = (now, False)
    if holder.monitoring[1]:
        items.append(("Monitoring", f"{PREFIX}/monitoring"))
    return items


def chart_set(data: dict[str, Any]) -> dict[str, str]:
    """The SVG charts of a page, drawn from its dict (HTML only: the JSON twin carries the numbers)."""
    out: dict[str, str] = {}
    page = data.get("page")
    if page == "feature_group":
        log = data["describe"].get("commit_log") or []
        labels = [f"c{c['commit_id']}" for c in log]
        out["commits"] = charts.stacked_bars("rows inserted / updated / deleted per commit", labels, {
            k: [c[k] for c in log] for k in ("inserted", "updated", "deleted")})
        out["rows"] = charts.lines("rows after each commit", labels, {"rows": [c["rows"] for c in log]})
        for feature, d in data["drift"].items():
            out[f"drift:{feature}"] = charts.lines(f"drift of {feature} per run", d["runs"], d["stats"])
        for feature, dist in (data.get("distributions") or {}).items():
            out[f"dist:{feature}"] = _distribution_chart(feature, dist)
        costs = list(reversed(data["cost_history"]))
        out["cost"] = charts.stacked_bars("seconds per run (build / test / validation)",
                                          [str(c["recorded_at"])[5:16] for c in costs], {
                                              k: [c.get(f"{k}_seconds") for c in costs]
                                              for k in ("build", "test", "validation")})
    elif page == "training_dataset":
        counts = data["training_dataset"].get("row_counts") or {}
        out["splits"] = charts.hbars("rows per split", [(k, v) for k, v in counts.items()])
    elif page == "model":
        for v in data["versions"]:
            latest = (v.get("validations") or [{}])[-1].get("metrics") or {}
            merged = {**{f"test {k}": x for k, x in latest.items() if "." not in k}, **(v.get("metrics") or {})}
            nums = [(k, x) for k, x in sorted(merged.items()) if isinstance(x, int | float) and not isinstance(x, bool)]
            out[f"metrics:{v['version']}"] = charts.hbars(f"metrics of version {v['version']}", nums)
    elif page == "monitoring":
        for fv, d in data["drift"].items():
            for feature, f in d["features"].items():
                series = {stat: [pts.get(r) for r in d["runs"]] for stat, pts in f["points"].items()}
                out[f"{fv}:{feature}"] = charts.lines(f"{fv}: {feature} drift per run", d["runs"], series)
    return {k: v for k, v in out.items() if v}


def _distribution_chart(feature: str, dist: dict[str, Any]) -> str:
    missing = f", {dist['missing']:,} missing" if dist.get("missing") else ""
    if dist["kind"] == "numeric" and dist.get("bins"):
        bins = dist["bins"]
        labels = [_num(b["from"]) for b in bins]
        return charts.stacked_bars(f"{feature}: rows per bin{missing}", labels, {"rows": [b["count"] for b in bins]})
    if dist["kind"] == "categorical" and dist.get("values"):
        items = [(str(v["value"]), v["count"]) for v in dist["values"]]
        if dist.get("other"):
            items.append(("(other)", dist["other"]))
        return charts.hbars(f"{feature}: most frequent values{missing}", items)
    return ""


def ui_router(factory: Callable[[], FeatureStore]) -> APIRouter:
    """The /ui routes over the project `factory()` opens. Every page: HTML at URL, the same data at URL.json."""
    holder = StoreHolder(factory)
    env = _templates()
    css = (HERE / "static" / "ui.css").read_bytes()
    router = APIRouter(prefix=PREFIX, tags=["ui"], include_in_schema=False)

    def respond(request: Request, template: str, page: Callable[..., dict[str, Any]], *args: Any,
                as_json: bool = False) -> Response:
        try:
            data = holder.build(page, *args)
        except FeatureStoreError as e:
            status = getattr(e, "status", None) or 400
            if as_json:
                return Response(orjson.dumps({"error": e.message, "fix": e.fix}), status_code=status,
                                media_type="application/json")
            html = env.get_template("error.html").render(error=e.message, fix=e.fix, nav=_nav(holder),
                                                         prefix=PREFIX, status=status)
            return HTMLResponse(html, status_code=status)
        if as_json:
            return Response(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")
        html = env.get_template(template).render(d=data, charts=chart_set(data), nav=_nav(holder), prefix=PREFIX,
                                                 json_url=request.url.path.rstrip("/") + ".json")
        return HTMLResponse(html)

    @router.get("/ui.css")
    def stylesheet() -> Response:
        return Response(css, media_type="text/css", headers={"cache-control": "max-age=3600"})

    @router.get("", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(f"{PREFIX}/")

    @router.get("/")
    def catalog(request: Request, q: str | None = None) -> Response:
        return respond(request, "catalog.html", pages.catalog_page, q)

    @router.get("/catalog.json")
    def catalog_json(request: Request, q: str | None = None) -> Response:
        return respond(request, "", pages.catalog_page, q, as_json=True)

    @router.get("/feature-groups/{name}.json")
    def feature_group_json(request: Request, name: str) -> Response:
        return respond(request, "", pages.feature_group_page, name, as_json=True)

    @router.get("/feature-groups/{name}")
    def feature_group(request: Request, name: str) -> Response:
        return respond(request, "feature_group.html", pages.feature_group_page, name)

    @router.get("/training-datasets.json")
    def tds_json(request: Request, feature_view: str | None = None) -> Response:
        return respond(request, "", pages.training_datasets_page, feature_view, as_json=True)

    @router.get("/training-datasets")
    def tds(request: Request, feature_view: str | None = None) -> Response:
        return respond(request, "training_datasets.html", pages.training_datasets_page, feature_view)

    @router.get("/training-datasets/{feature_view}/{version}.json")
    def td_json(request: Request, feature_view: str, version: int) -> Response:
        return respond(request, "", pages.training_dataset_page, feature_view, version, as_json=True)

    @router.get("/training-datasets/{feature_view}/{version}")
    def td(request: Request, feature_view: str, version: int) -> Response:
        return respond(request, "training_dataset.html", pages.training_dataset_page, feature_view, version)

    @router.get("/models.json")
    def models_json(request: Request) -> Response:
        return respond(request, "", pages.models_page, as_json=True)

    @router.get("/models")
    def models(request: Request) -> Response:
        return respond(request, "models.html", pages.models_page)

    @router.get("/models/{name}.json")
    def model_json(request: Request, name: str) -> Response:
        return respond(request, "", pages.model_page, name, as_json=True)

    @router.get("/models/{name}")
    def model(request: Request, name: str) -> Response:
        return respond(request, "model.html", pages.model_page, name)

    @router.get("/monitoring.json")
    def monitoring_json(request: Request) -> Response:
        return respond(request, "", pages.monitoring_page, as_json=True)

    @router.get("/monitoring")
    def monitoring(request: Request) -> Response:
        return respond(request, "monitoring.html", pages.monitoring_page)

    return router


def store_factory(project_dir: str | os.PathLike | None, target: str | None) -> Callable[[], FeatureStore]:
    def make() -> FeatureStore:
        from ..sdk import FeatureStore

        return FeatureStore(project_dir, target=target)

    return make


KEY_COOKIE = "fs_ui_key"


class BrowserKey:
    """Pure ASGI wrapper, outside the API-key check: a browser cannot send an x-api-key header, so a /ui page opened
    once as /ui/?key=KEY stores the key in an HttpOnly, SameSite=Strict cookie, and later /ui requests present it as
    x-api-key. The key check itself stays the online service's (`_Edge`); other paths are untouched."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        from urllib.parse import parse_qs

        headers = list(scope["headers"])
        given = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("key") or [None])[0]
        if given is None:
            for k, v in headers:
                if k == b"cookie":
                    for part in v.decode("latin-1").split(";"):
                        name, _, value = part.strip().partition("=")
                        if name == KEY_COOKIE and value:
                            given = value
        if given is None or any(k == b"x-api-key" for k, _ in headers):
            await self.app(scope, receive, send)
            return
        scope = {**scope, "headers": [*headers, (b"x-api-key", given.encode("latin-1"))]}
        from_query = b"key=" in scope.get("query_string", b"")

        async def remember(msg: dict) -> None:
            if from_query and msg["type"] == "http.response.start" and msg["status"] < 400:
                cookie = f"{KEY_COOKIE}={given}; Path={PREFIX}; HttpOnly; SameSite=Strict"
                msg["headers"] = [*msg.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
            await send(msg)

        await self.app(scope, receive, remember)


def include_ui(app: FastAPI) -> None:
    """`fs serve` with FS_UI_PROJECT_DIR set: add /ui (reading that project's warehouse) to the online service.
    Unset (the default), nothing is added and the service keeps never opening the warehouse. Called after the
    API-key wrapper is added, so the browser-key wrapper sits outside it."""
    project_dir = os.environ.get(UI_PROJECT_ENV)
    if project_dir:
        app.include_router(ui_router(store_factory(project_dir, os.environ.get("FS_TARGET") or None)))
        app.add_middleware(BrowserKey)
