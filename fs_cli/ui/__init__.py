"""The read-only web UI (`fs ui`, or /ui of `fs serve` with FS_UI_PROJECT_DIR): pages.py builds each page's data
through the SDK as a plain dict; web.py renders it as HTML and serves it as JSON at `<page>.json`."""
