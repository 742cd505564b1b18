"""Themes are data: TOML files in the top-level `themes/` directory, decoded into Textual themes.

A theme file holds the keys of `textual.theme.Theme` plus a `[variables]` table for trdr's own
colours (`pnl-up`, `bid`, ...). Anything a `.tcss` file or a widget colours comes from these, so a user
can restyle the cockpit by dropping a file in the directory.
"""

from __future__ import annotations

import difflib
import tomllib
from importlib.abc import Traversable

import msgspec
from textual.theme import Theme

from trdr_tui.core.errors import ConfigError
from trdr_tui.resources import bundled_dir

# Defaults for trdr's variables: a theme may leave any of them out.
TRDR_VARIABLE_DEFAULTS: dict[str, str] = {
    "pnl-up": "#22C55E",
    "pnl-down": "#EF4444",
    "bid": "#34D399",
    "ask": "#F87171",
    "grid-level": "#64748B",
    "trigger": "#F59E0B",
    "price": "#38BDF8",
    "volume": "#475569",
    "heat-cold": "#1E3A5F",
    "heat-hot": "#B45309",
    "muted": "#8B949E",
}


class ThemeFile(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The schema of one theme file (unknown keys are refused with a suggestion)."""

    name: str
    primary: str
    dark: bool = True
    secondary: str | None = None
    accent: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    boost: str | None = None
    luminosity_spread: float = 0.15
    text_alpha: float = 0.95
    variables: dict[str, str] = msgspec.field(default_factory=dict)

    def to_theme(self) -> Theme:
        fields = msgspec.structs.asdict(self)
        fields["variables"] = {**TRDR_VARIABLE_DEFAULTS, **self.variables}
        return Theme(**fields)


_FIELDS = [f.name for f in msgspec.structs.fields(ThemeFile)]


def parse_theme(text: str, origin: str) -> Theme:
    """One theme file's text → a Textual Theme; ConfigError naming the file and key otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=origin) from None
    for key in data:
        if key not in _FIELDS:
            guess = difflib.get_close_matches(key, _FIELDS, n=1)
            hint = f"did you mean '{guess[0]}'?" if guess else f"known keys: {', '.join(_FIELDS)}"
            raise ConfigError(f"unknown theme key '{key}'", where=origin, hint=hint)
    try:
        spec = msgspec.convert(data, ThemeFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid theme: {exc}", where=origin,
                          hint="a theme needs `name` and `primary`; colours are strings like '#1D4ED8'") from None
    theme = spec.to_theme()
    try:
        theme.to_color_system()
    except Exception as exc:  # Textual raises its own colour parse errors
        raise ConfigError(f"invalid colour: {exc}", where=origin, hint="use '#RRGGBB' or a CSS colour name") from None
    return theme


def load_themes(directory: Traversable | None = None) -> dict[str, Theme]:
    """Every `*.toml` theme in the directory (the bundled `themes/` by default), by name, sorted."""
    directory = directory if directory is not None else bundled_dir("themes")
    themes: dict[str, Theme] = {}
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        theme = parse_theme(entry.read_text(encoding="utf-8"), f"themes/{entry.name}")
        themes[theme.name] = theme
    return themes
