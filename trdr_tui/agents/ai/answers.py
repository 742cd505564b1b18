"""What Claude must answer, as msgspec types: the tool schemas it is given and the validation of
what comes back (PRD §12.1: PATTERN, SUPPORT, RESISTANCE, MOMENTUM, ACTION, CONFIDENCE, TRAIL_DISTANCE).

The answer arrives as the input of a forced tool call (structured output). The tool's JSON schema is
generated from the same Struct that decodes it, so the two cannot drift. Anything that does not
decode, or holds a number outside its range, is an `InvalidResponse` (E004): it never reaches a
decision.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec

from trdr_tui.core.errors import InvalidResponse

T = TypeVar("T", bound=msgspec.Struct)
Momentum = Literal["BULLISH", "BEARISH", "NEUTRAL"]


class PatternAnswer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The chart reading (PRD §12.1). Prices in the quote currency; confidence 0–100; trail in percent."""

    pattern: Annotated[str, msgspec.Meta(min_length=1, max_length=80,
                                         description="chart pattern name, or NONE")]
    support: Annotated[float, msgspec.Meta(gt=0, description="key support price level")]
    resistance: Annotated[float, msgspec.Meta(gt=0, description="key resistance price level")]
    momentum: Annotated[Momentum, msgspec.Meta(description="momentum direction")]
    action: Annotated[Literal["TRAIL_BUY", "TRAIL_SELL", "WAIT"],
                      msgspec.Meta(description="arm a trailing buy, a trailing sell, or wait")]
    confidence: Annotated[float, msgspec.Meta(ge=0, le=100, description="confidence, 0-100")]
    trail_distance: Annotated[float, msgspec.Meta(gt=0, le=20, description="trail distance in percent of price")]


class MetaAnswer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to resolve a split panel: the side to take (or HOLD), a confidence 0–100 and why."""

    action: Annotated[Literal["TRAIL_BUY", "TRAIL_SELL", "HOLD"],
                      msgspec.Meta(description="the decision for this bar")]
    confidence: Annotated[float, msgspec.Meta(ge=0, le=100, description="confidence, 0-100")]
    reasoning: Annotated[str, msgspec.Meta(min_length=1, max_length=400, description="one or two sentences")]


PATTERN_TOOL = "report_chart_analysis"
META_TOOL = "resolve_split_panel"


def tool(name: str, description: str, answer: type[msgspec.Struct]) -> dict[str, Any]:
    """An Anthropic tool definition whose `input_schema` is the answer type's JSON schema."""
    schema = msgspec.json.schema(answer)
    ref = schema.get("$ref", "").rsplit("/", 1)[-1]
    body: dict[str, Any] = dict(schema.get("$defs", {}).get(ref, schema))
    body.pop("title", None)
    return {"name": name, "description": description, "input_schema": body}


def decode_answer(raw: Any, answer: type[T], *, where: str) -> T:
    """The tool input (a dict, or JSON text) as `answer`; InvalidResponse (E004) if it does not fit."""
    try:
        if isinstance(raw, str | bytes):
            return msgspec.json.decode(raw, type=answer)
        return msgspec.convert(raw, answer)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidResponse(f"Claude's answer does not fit {answer.__name__}: {exc}", where=where,
                              hint="the answer is dropped; the agent skips this bar") from None


def check_levels(answer: PatternAnswer, low: float, high: float, *, where: str) -> None:
    """Support below resistance, both within half to twice the window's price range: else E004."""
    lo, hi = low * 0.5, high * 2.0
    if not (lo <= answer.support <= hi and lo <= answer.resistance <= hi):
        raise InvalidResponse(f"support {answer.support:g} / resistance {answer.resistance:g} outside "
                              f"{lo:g}…{hi:g} (the chart shows {low:g}…{high:g})", where=where,
                              hint="the answer is dropped; the agent skips this bar")
    if answer.support > answer.resistance:
        raise InvalidResponse(f"support {answer.support:g} above resistance {answer.resistance:g}", where=where,
                              hint="the answer is dropped; the agent skips this bar")
