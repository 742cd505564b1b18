"""The Textual cockpit: the only package that imports Textual (see docs/tui.md)."""
