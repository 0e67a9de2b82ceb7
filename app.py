"""The Chalice app: wiring only. Each transport registers its own handlers."""

from typing import Any

from chalice.app import Chalice, Rate

from chalicelib.transport import rest

app = Chalice(app_name="zaqar-serverless")
app.register_blueprint(rest.bp)


@app.schedule(Rate(5, unit=Rate.MINUTES), name="housekeeping")
def housekeeping(event: Any) -> dict[str, int]:
    from chalicelib import runtime
    from chalicelib.api import housekeeping

    return housekeeping.run(runtime.services())
