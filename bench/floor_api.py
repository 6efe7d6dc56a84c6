"""The framework's floor: the bare endpoint's work behind the stack wxhub is built on.

``bare_api.py`` is the least a Python WSGI endpoint can do. wxhub is, by design, a Flask
application whose parameters are declared and validated through flask-openapi3 (what
documents them in the OpenAPI file and turns a bad one into a 400 naming it). This module
is the least *that* stack can do for each request type: a flask-openapi3 route per type,
validating the query string with wxhub's own parameter model (``WeatherQuery``,
``StatsQuery``, ``StationsQuery``), then exactly the bare endpoint's query and dicts, and
Flask's own JSON. No request id, access log, security headers, ETag, data version, total
or links.

``bench_api.py`` serves it beside wxhub and the bare endpoint under the same gunicorn
configuration: wxhub / floor is what wxhub's own contract costs on this stack, floor /
bare what the stack itself costs.

    BARE_DATABASE_URL=sqlite:////tmp/wxhub.db gunicorn --chdir bench floor_api:app
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from flask_openapi3.openapi import OpenAPI
from pydantic import BaseModel

import bare_api
from wxhub.api.schemas import StationsQuery, StatsQuery, WeatherQuery

app = OpenAPI(__name__, validation_error_status=400)
app.json.sort_keys = False  # type: ignore[attr-defined]  # as wxhub: fields in their order

# Each bare path's parameters are valid values of wxhub's model for the same resource
# (the ``after`` request's station_id and date are WeatherQuery's own fields).
_MODELS: dict[str, type[BaseModel]] = {
    "/bare/first": WeatherQuery,
    "/bare/year": WeatherQuery,
    "/bare/after": WeatherQuery,
    "/bare/offset": WeatherQuery,
    "/bare/stats": StatsQuery,
    "/bare/stations": StationsQuery,
}


def _route(
    path: str, handler: Callable[[dict[str, str]], list[dict[str, Any]]], model: type[BaseModel]
) -> None:
    # flask-openapi3 finds the model from the view's annotation, as it does for wxhub.
    def view(query: BaseModel) -> dict[str, Any]:
        return {"data": handler(request.args.to_dict())}

    view.__annotations__ = {"query": model, "return": dict}
    view.__name__ = path.strip("/").replace("/", "_")
    app.get(path)(view)


for _path, _handler in bare_api.ROUTES.items():
    _route(_path, _handler, _MODELS[_path])
