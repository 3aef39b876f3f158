"""The OpenAPI 3.1 document served at ``/openapi.json``.

Assembled by hand, route by route, so it reads as the API's reference; the schemas of
every JSON body and response are generated from the pydantic models in
``risingtide.api.models`` (OpenAPI 3.1 uses JSON Schema 2020-12, which pydantic writes),
so they cannot drift from what the handlers accept. ``tests/e2e/test_api_fuzz.py`` runs
schemathesis against a live daemon from this document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from risingtide import __version__
from risingtide.api import demand, duty, listing, models, replicas, wallboard

_MODELS: list[type[BaseModel]] = [
    models.AckBody,
    models.SilenceBody,
    models.OverrideBody,
    models.Error,
    models.ReloadError,
    models.Reloaded,
    models.LineOut,
    models.LinesOut,
    wallboard.BoardOut,
    models.CommandDone,
    models.EventsOut,
    models.SessionOut,
    models.Health,
    models.OutboxNoteBody,
    models.OutboxOut,
    models.OutboxDone,
    duty.GroupsOut,
    demand.DemandOut,
    replicas.ReplicasOut,
]

JSON = "application/json"
HTML = "text/html"
FORM = "application/x-www-form-urlencoded"

# Reads are open when no users are configured (the empty requirement).
_READ: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"sessionCookie": []}, {}]
_CHANGE: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"sessionCookie": [], "csrfHeader": []}]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(model)}}}


def _err(description: str) -> dict[str, Any]:
    return _json(models.Error, description)


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {HTML: {"schema": {"type": "string"}}}}


def _redirect(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Location": {"schema": {"type": "string"}, "description": "Where to go."}},
    }


_UNAUTHENTICATED = {
    "description": "Not signed in and no valid API token.",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer realm."}},
    "content": {JSON: {"schema": _ref(models.Error)}},
}

_LINE = {
    "name": "line",
    "in": "path",
    "required": True,
    "description": "The line's id in the config, e.g. council_tax.",
    "schema": {"type": "string"},
}
_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The token from an acknowledgement link.",
    "schema": {"type": "string"},
}


def _read(summary: str, ok: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": _READ,
        "responses": {
            "200": ok,
            "401": _UNAUTHENTICATED,
            "403": _err("The caller's role may not read (never for a viewer or above)."),
            **more,
        },
    }


def _change(
    summary: str,
    description: str,
    body: type[BaseModel] | None,
    *,
    body_required: bool = True,
    admin: bool = False,
    ok: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    role = "admin" if admin else "duty_manager"
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"{description}\n\nNeeds the **{role}** role (or above). With a sign-in "
        "cookie, send the session's CSRF value as `X-CSRF-Token`.",
        "security": _CHANGE,
        "responses": {
            "200": ok or _json(models.CommandDone, "Done; the line as it now stands."),
            "401": _UNAUTHENTICATED,
            "403": _err(
                "The caller's role does not allow this, a cookie-authenticated change "
                "lacks X-CSRF-Token, or no users are configured."
            ),
            **(extra or {}),
        },
    }
    if not admin:
        op["parameters"] = [_LINE]
        op["responses"]["404"] = _err("No such line in the config.")
        op["responses"]["409"] = _err("The command makes no sense as the line stands.")
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "content": {JSON: {"schema": _ref(body)}},
        }
        op["responses"]["400"] = _err("The body is not JSON, or has wrong or unknown fields.")
        op["responses"]["413"] = _err("The body is over 64 KiB.")
    return op


def _paths() -> dict[str, Any]:
    timed = (
        "Give exactly one of `until` (an ISO 8601 date and time with an offset) and `for` "
        "(a duration such as `2h`); at most 31 days ahead."
    )
    semantic = _err("Well-formed but impossible: `until` in the past, a tier the line lacks.")
    login_form = {
        "required": True,
        "content": {
            FORM: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                        "csrf_token": {"type": "string"},
                        "next": {"type": "string"},
                    },
                    "required": ["username", "password", "csrf_token"],
                }
            }
        },
    }
    ack_form = {
        "required": True,
        "content": {
            FORM: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "maxLength": 80},
                        "note": {"type": "string", "maxLength": 500},
                        "csrf_token": {"type": "string"},
                    },
                    "required": ["name", "csrf_token"],
                }
            }
        },
    }
    return {
        "/api/v1/lines": {"get": _lines_listing()},
        "/api/v1/lines/{line}": {
            "parameters": [_LINE],
            "get": _read(
                "One line now",
                _json(models.LineOut, "The line."),
                **{"404": _err("No such line in the config.")},
            ),
        },
        "/api/v1/lines/{line}/ack": {
            "post": _change(
                "Acknowledge the line's tier",
                "Stops the tier's reminders and escalation; a rise needs a new "
                "acknowledgement. Recorded as the caller's name.",
                models.AckBody,
                body_required=False,
            )
        },
        "/api/v1/lines/{line}/silence": {
            "post": _change(
                "Silence the line for planned work",
                f"No responses run until it ends; tiers still move. {timed}",
                models.SilenceBody,
                extra={"422": semantic},
            ),
            "delete": _change("Lift the line's silence early", "", None),
        },
        "/api/v1/lines/{line}/override": {
            "post": _change(
                "Declare a tier ahead of a known event",
                f"The line stays at the declared tier or above until it ends. {timed}",
                models.OverrideBody,
                extra={"422": semantic},
            ),
            "delete": _change(
                "End the line's declared tier early",
                "The tier then falls only through its clear rules.",
                None,
            ),
        },
        "/api/v1/events": {
            "get": {
                **_read(
                    "The history, newest first",
                    _json(models.EventsOut, "A page of events."),
                    **{
                        "400": _err("A malformed query parameter."),
                        "503": _err("The store is not open yet (starting up)."),
                    },
                ),
                "parameters": _history_parameters(1000),
            }
        },
        "/api/v1/events.csv": {
            "get": {
                **_read(
                    "The history as CSV, newest first",
                    {
                        "description": "Columns id, at, line, kind, tier, by, reason, data "
                        "(the event as JSON).",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    **{
                        "400": _err("A malformed query parameter."),
                        "503": _err("The store is not open yet (starting up)."),
                    },
                ),
                "parameters": _history_parameters(100_000),
            }
        },
        "/api/v1/board": {
            "get": _read(
                "The duty board's answers",
                _json(wallboard.BoardOut, "Every line, raised first, each with its briefing."),
            )
        },
        "/wallboard": {
            "get": {
                "summary": "The read-only wallboard for the contact-centre floor",
                "parameters": [
                    _query(
                        "token",
                        {"type": "string"},
                        "A viewer's API token (the page removes it from the address bar at once).",
                    ),
                ],
                "responses": {
                    "200": _html("The wallboard."),
                    "303": _redirect("Users are configured, no token, not signed in."),
                    "401": _html("The token is not valid."),
                },
            }
        },
        "/api/v1/groups": {
            "get": {
                **_read(
                    "Who is on duty in each group",
                    _json(duty.GroupsOut, "Every group: who is on duty (no addresses)."),
                    **{"400": _err("at is not an ISO 8601 time with an offset.")},
                ),
                "parameters": [
                    _query(
                        "at",
                        {"type": "string", "format": "date-time"},
                        "Ask about this moment instead of now (with an offset, e.g. Z).",
                    )
                ],
            }
        },
        **_outbox_paths(),
        "/api/v1/session": {
            "get": _read(
                "Who the caller is",
                _json(models.SessionOut, "The caller, and their CSRF value when signed in."),
            )
        },
        "/-/reload": {
            "post": _change(
                "Reload the config",
                "Line state is kept; a config with errors is refused and the old one keeps "
                "running.",
                None,
                admin=True,
                ok=_json(models.Reloaded, "The new config is running."),
                extra={"422": _json(models.ReloadError, "The config has errors.")},
            )
        },
        "/login": {
            "get": {
                "summary": "The sign-in page",
                "responses": {
                    "200": _html("The sign-in form."),
                    "404": _html("No users are configured."),
                },
            },
            "post": {
                "summary": "Sign in",
                "requestBody": login_form,
                "responses": {
                    "303": _redirect("Signed in: the session cookie is set."),
                    "400": _html("A field is missing or the form had expired."),
                    "401": {
                        **_html("Wrong username or password."),
                        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                    },
                    "404": _html("No users are configured."),
                    "429": {
                        **_html("Too many wrong passwords; try later."),
                        "headers": {"Retry-After": {"schema": {"type": "string"}}},
                    },
                },
            },
        },
        "/logout": {
            "post": {
                "summary": "Sign out",
                "requestBody": {
                    "required": False,
                    "content": {
                        FORM: {
                            "schema": {
                                "type": "object",
                                "properties": {"csrf_token": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": {
                    "303": _redirect("Signed out (or was not signed in)."),
                    "403": _html("The form did not come from this site."),
                },
            }
        },
        "/ack/{token}": {
            "parameters": [_TOKEN],
            "get": {
                "summary": "The confirmation page of an acknowledgement link",
                "description": "Shows what would be acknowledged; never acknowledges.",
                "responses": {
                    "200": _html("The confirmation form."),
                    "400": _html("Not a link this daemon signed."),
                    "404": _html("Acknowledgement links are not switched on."),
                    "410": _html("Expired, already acknowledged, or the alert is over."),
                },
            },
            "post": {
                "summary": "Acknowledge from a link's confirmation page",
                "description": 'Recorded as the name typed, with " (via link)".',
                "requestBody": ack_form,
                "responses": {
                    "200": _html("Acknowledged."),
                    "400": _html("Not a valid link, or a field needs correcting."),
                    "403": _html("The form did not come from the confirmation page."),
                    "404": _html("Acknowledgement links are not switched on."),
                    "410": _html("Expired, already acknowledged, or the alert is over."),
                },
            },
        },
        "/": {
            "get": {
                "summary": "The duty board",
                "responses": {
                    "200": _html("The board."),
                    "303": _redirect("Users are configured and the caller is not signed in."),
                },
            }
        },
        "/history": {
            "get": {
                "summary": "The history page, with filters and a CSV download",
                "parameters": [
                    _query("line", {"type": "string"}, "Only this line."),
                    _query("kind", {"type": "string"}, "Only this kind."),
                    _query("since", {"type": "string", "format": "date-time"}, "At or after."),
                    _query("until", {"type": "string", "format": "date-time"}, "Before."),
                ],
                "responses": {
                    "200": _html("The most recent events that match."),
                    "303": _redirect("Users are configured and the caller is not signed in."),
                    "400": _html("A filter is malformed; the page says which."),
                    "503": _html("The daemon is still starting."),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "responses": {
                    "200": _json(models.Health, "The evaluation loop is running."),
                    "503": _json(models.Health, "The evaluation loop has stalled."),
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness",
                "responses": {
                    "200": _json(models.Health, "Every line has been evaluated once."),
                    "503": _json(models.Health, "Still starting."),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "The text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


def _outbox_paths() -> dict[str, Any]:
    """``GET /api/v1/outbox`` and the dead-letter commands (``risingtide.api.outbox``)."""
    key = {
        "name": "key",
        "in": "path",
        "required": True,
        "description": "The entry's idempotency key, URL-encoded: it contains /, : and @.",
        "schema": {"type": "string"},
    }

    def command(summary: str, description: str, done: str) -> dict[str, Any]:
        return {
            "summary": summary,
            "description": f"{description}\n\nNeeds the **duty_manager** role (or above). "
            "With a sign-in cookie, send the session's CSRF value as `X-CSRF-Token`.",
            "security": _CHANGE,
            "parameters": [key],
            "requestBody": {
                "required": False,
                "content": {JSON: {"schema": _ref(models.OutboxNoteBody)}},
            },
            "responses": {
                "200": _json(models.OutboxDone, done),
                "400": _err("The body is not JSON, or has wrong or unknown fields."),
                "401": _UNAUTHENTICATED,
                "403": _err(
                    "The caller's role does not allow this, a cookie-authenticated change "
                    "lacks X-CSRF-Token, or no users are configured."
                ),
                "404": _err("No outbox entry has this key."),
                "409": _err(
                    "Not a dead letter (pending, done or dismissed), or running it again "
                    "would do harm (a switch its line has moved on from)."
                ),
                "413": _err("The body is over 64 KiB."),
                "503": _err("The store is not open yet (starting up)."),
            },
        }

    return {
        "/api/v1/outbox": {
            "get": {
                **_read(
                    "Dead letters (or pending responses) in the outbox",
                    _json(models.OutboxOut, "Entries of one status."),
                    **{
                        "400": _err("A malformed query parameter."),
                        "503": _err("The store is not open yet (starting up)."),
                    },
                ),
                "parameters": [
                    _query(
                        "status",
                        {"type": "string", "enum": ["dead", "pending"], "default": "dead"},
                        "dead: responses given up on, newest first; pending: waiting to "
                        "run, oldest first.",
                    ),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Rows."),
                ],
            }
        },
        "/api/v1/outbox/{key}/retry": {
            "post": command(
                "Run a dead letter again",
                "After fixing what killed it (a rotated key, a wrong URL): it goes out again "
                "now as a fresh order, with its attempts counted from 0; a member of a "
                "message sent to several lines goes out alone. An order older than the retry "
                "policy allows (an hour; a day for an undo) gets one more try. A switch its "
                "line has moved on from is refused (409).",
                "Requeued; the entry as it now stands (pending).",
            )
        },
        "/api/v1/outbox/{key}/dismiss": {
            "post": command(
                "Dismiss a dead letter",
                "It never runs, and no longer counts in risingtide_outbox_dead; the history "
                "keeps who dismissed it, and the note.",
                "Dismissed; the entry as it now stands.",
            )
        },
    }


def _lines_listing() -> dict[str, Any]:
    """``GET /api/v1/lines``: a page of lines, filtered (``risingtide.api.listing``)."""
    op = _read(
        "The lines now, a page at a time",
        _json(models.LinesOut, "A page of lines in config order, and the next page's path."),
        **{"400": _err("A bad limit or tier_at_least, or an after that is no line.")},
    )
    op["parameters"] = [
        _query("limit", {"type": "integer", "minimum": 1, "maximum": listing.MOST,
                         "default": listing.DEFAULT_LIMIT}, "Lines a page."),
        _query("tier_at_least", {"type": "integer", "minimum": 0, "default": 0},
               "Only lines at this tier or above."),
        _query("after", {"type": "string"},
               "Start after this line id (the cursor in the previous page's next)."),
    ]  # fmt: skip
    return op


def _history_parameters(most: int) -> list[dict[str, Any]]:
    """The filters of the history's JSON and CSV forms; ``most`` rows at a time."""
    return [
        _query("line", {"type": "string"}, "Only this line."),
        _query("kind", {"type": "string"}, "Only this kind (repeatable)."),
        _query("since", {"type": "string", "format": "date-time"}, "At or after."),
        _query("until", {"type": "string", "format": "date-time"}, "Before."),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": most}, "Rows."),
        _query(
            "before",
            {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
            "Entries older than this id (next_before of the previous page).",
        ),
    ]


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


_EPISODE = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The episode's id, `<line>-<number>`, e.g. council_tax-3.",
    "schema": {"type": "string"},
}
_OBJECT = {"type": "object"}


def _json_any(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema or _OBJECT}}}


def _json_or_page(description: str) -> dict[str, Any]:
    """An answer in JSON to the API, or a page to the episode page's form."""
    return {
        "description": description,
        "content": {JSON: {"schema": _ref(models.Error)}, HTML: {"schema": {"type": "string"}}},
    }


def _episode_paths() -> dict[str, Any]:
    """Episodes, lessons learned and the lines' trend (``risingtide.api.episodes``)."""
    return {
        "/api/v1/episodes": {"get": _episodes_list()},
        "/api/v1/episodes/{id}": {"get": _episode_one()},
        "/api/v1/episodes/{id}/lessons": {"post": _episode_lessons()},
        "/api/v1/lines/{line}/trend": {"get": _line_trend()},
        "/episodes": {"get": _episode_page("Every episode, with filters", filters=True)},
        "/episodes/{id}": {"get": _episode_page("One episode's story, chart and lessons form")},
    }


def _episode_page(summary: str, *, filters: bool = False) -> dict[str, Any]:
    """The episode pages (HTML)."""
    return {
        "summary": summary,
        "parameters": (
            [
                _query("line", {"type": "string"}, "Only this line."),
                _query("since", {"type": "string", "format": "date-time"}, "Began at or after."),
                _query("until", {"type": "string", "format": "date-time"}, "Began before."),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Episodes."),
            ]
            if filters
            else [_EPISODE]
        ),
        "responses": {
            "200": _html("The page."),
            "303": _redirect("Users are configured and the caller is not signed in."),
            **({"400": _html("A filter is malformed; the page says which.")} if filters else {}),
            **({} if filters else {"404": _html("Not an episode id, or no such episode.")}),
        },
    }


def _episodes_list() -> dict[str, Any]:
    episodes = {"type": "object", "properties": {"episodes": {"type": "array",
                "items": _OBJECT}}, "required": ["episodes"]}  # fmt: skip
    return {
        **_read(
            "Episodes that began in a period, newest first",
            _json_any(
                "Each episode's headline figures: id, line, started_at, ended_at (null while "
                "it goes on), peak_tier, minutes_in_tiers, seconds_to_first_ack, peak waits "
                "and abandonment, calls (estimated from the window counts), "
                "peak_capacity_gap.",
                episodes,
            ),
            **{"400": _err("A malformed query parameter.")},
            **{"503": _err("The store is not open yet (starting up).")},
        ),
        "description": "An episode runs from a line's first rise above calm to calm again.",
        "parameters": [
            _query("line", {"type": "string"}, "Only this line."),
            _query("since", {"type": "string", "format": "date-time"}, "Began at or after."),
            _query("until", {"type": "string", "format": "date-time"}, "Began before."),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Episodes."),
        ],
    }


def _episode_one() -> dict[str, Any]:
    return {
        **_read(
            "One episode's whole story",
            _json_any(
                "The headline figures plus the timeline of tier changes with reasons, notes "
                "(acknowledgements, silences, declarations, reminders, escalations), "
                "notifications with their outcomes, switches with the average wait 15 "
                "minutes before and after, lessons learned, the wait thresholds and the "
                "samples (one a minute, from 15 minutes before the rise to 15 after calm)."
            ),
            **{"404": _err("Not an episode id, or no such episode in the history.")},
            **{"503": _err("The store is not open yet (starting up).")},
        ),
        "parameters": [_EPISODE],
    }


def _episode_lessons() -> dict[str, Any]:
    body = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 4000}},
            "required": ["text"]}  # fmt: skip
    form = {"type": "object", "properties": {"text": {"type": "string"},
            "csrf_token": {"type": "string"}}, "required": ["text", "csrf_token"]}  # fmt: skip
    return {
        "summary": "Add lessons learned to an episode",
        "description": "Stored in the history as `lessons_learned` with the user's name, "
        "shown on the episode and in reports.\n\nNeeds the **duty_manager** role (or "
        "above). With a sign-in cookie, send the session's CSRF value as `X-CSRF-Token`; "
        "the episode page's form sends it as `csrf_token` and is answered with pages.",
        "security": _CHANGE,
        "parameters": [_EPISODE],
        "requestBody": {"required": True, "content": {JSON: {"schema": body},
                                                      FORM: {"schema": form}}},
        "responses": {
            "201": _json_any("Saved: the record (at, episode, by, text)."),
            "303": _redirect("The form was saved: back to the episode page."),
            "400": _json_or_page("No text, text over 4,000 characters, or not JSON."),
            "401": _UNAUTHENTICATED,
            "403": _json_or_page(
                "The caller's role does not allow this, a cookie-authenticated change "
                "lacks its CSRF value, or no users are configured."
            ),
            "404": _json_or_page("Not an episode id, or no such episode."),
            "413": _err("The body is over 64 KiB."),
        },
    }  # fmt: skip


def _line_trend() -> dict[str, Any]:
    trend = {
        "type": "object",
        "properties": {
            "line": {"type": "string"},
            "now": {"type": "string", "format": "date-time"},
            "samples": {"type": "array", "items": _OBJECT},
        },
        "required": ["line", "now", "samples"],
    }
    return {
        **_read(
            "A line's last hour, one sample a minute",
            _json_any(
                "The daemon's now and the line's samples (at, avg_wait, longest_wait, "
                "abandon_rate, calls_waiting, offered, answered, abandoned, agents_staffed, "
                "agents_needed, window), oldest first; kept in memory, so empty after a "
                "restart until figures arrive.",
                trend,
            ),
            **{"404": _err("No such line in the config.")},
        ),
        "parameters": [_LINE],
    }  # fmt: skip


def _demand_paths() -> dict[str, Any]:
    """The demand calendar's next days (``risingtide.api.demand``)."""
    days = _query(
        "days",
        {"type": "integer", "minimum": 1, "maximum": demand.MOST_DAYS, "default": 7},
        "How many days ahead to look.",
    )
    line = _query("line", {"type": "string"}, "Only this line (its id in the config).")
    read = _read(
        "What is coming up on the demand calendar",
        _json(demand.DemandOut, "Per line, the events under way or beginning within the days."),
        **{"400": _err("days is not a whole number from 1 to 366."), "404": _err("No such line.")},
    )
    return {"/api/v1/demand": {"get": {**read, "parameters": [days, line]}}}


def _replicas_paths() -> dict[str, Any]:
    """Who leads which partition (``risingtide.api.replicas``)."""
    read = _read(
        "Who leads which partition of the lines",
        _json(replicas.ReplicasOut, "This replica, and every partition's lease holder."),
        **{"503": _err("The store cannot be read just now.")},
    )
    return {"/api/v1/replicas": {"get": read}}


def openapi_document() -> dict[str, Any]:
    """The whole document (the same every time; the app caches it)."""
    _, top = models_json_schema(
        [(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    schemas = top.get("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Rising Tide",
            "version": __version__,
            "description": "Tiered alerts for a council's contact-centre call lines: read "
            "the lines and their history; acknowledge, silence and declare tiers; reload the "
            'config. Every refusal is a 4xx with {"error": reason}.',
        },
        "paths": {**_paths(), **_episode_paths(), **_demand_paths(), **_replicas_paths()},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (risingtide new-token); the config holds "
                    "its sha256.",
                },
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "rt_session",
                    "description": "Set by POST /login.",
                },
                "csrfHeader": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "csrf_token from GET /api/v1/session; needed with the "
                    "cookie on changes.",
                },
            },
        },
    }
