"""The Chalice app: wiring only. Each transport registers its own handlers."""

from typing import Any

from chalice.app import Chalice, Rate, WebsocketEvent

from chalicelib.transport import rest
from chalicelib.transport.aws import ChaliceSender, LazySession

app = Chalice(app_name="zaqar-serverless")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.websocket_api.session = LazySession()
app.register_blueprint(rest.bp)


@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> None:
    from chalicelib import runtime
    from chalicelib.transport import websocket

    source_ip = event.to_dict().get("requestContext", {}).get("identity", {}).get("sourceIp", "")
    websocket.on_connect(runtime.services(), event.connection_id, source_ip)


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> None:
    from chalicelib import runtime
    from chalicelib.transport import websocket

    websocket.on_message(runtime.services(), ChaliceSender(app.websocket_api), event.connection_id, event.body)


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    from chalicelib import runtime
    from chalicelib.transport import websocket

    websocket.on_disconnect(runtime.services(), event.connection_id)


@app.schedule(Rate(5, unit=Rate.MINUTES), name="housekeeping")
def housekeeping(event: Any) -> dict[str, int]:
    from chalicelib import runtime
    from chalicelib.api import housekeeping

    return housekeeping.run(runtime.services())
