"""The Chalice app: wiring only. Each transport registers its own handlers."""

from typing import Any

from chalice.app import Chalice, KinesisEvent, Rate, SQSEvent, WebsocketEvent

from chalicelib.config import get_settings
from chalicelib.transport import (
    http,
    lambdas,
    rest_admin,
    rest_console,
    rest_home,
    rest_messages,
    rest_openapi,
    rest_queues,
    rest_subscriptions,
    rest_topics,
)
from chalicelib.transport.aws import ChaliceSender, LazySession

settings = get_settings()
app = Chalice(app_name="zaqar-serverless")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.websocket_api.session = LazySession()
app.register_blueprint(http.bp)  # the REST error boundary (middleware), no routes
app.register_blueprint(rest_home.bp)
app.register_blueprint(rest_queues.bp)
app.register_blueprint(rest_messages.bp)
app.register_blueprint(rest_subscriptions.bp)
app.register_blueprint(rest_topics.bp)
app.register_blueprint(rest_admin.bp)
app.register_blueprint(rest_openapi.bp)
app.register_blueprint(rest_console.bp)  # the web console's static files


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

    websocket.on_frame(runtime.services, ChaliceSender(app.websocket_api), event.connection_id, event.body,
                       request_id=event.to_dict().get("requestContext", {}).get("requestId"))


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    from chalicelib import runtime
    from chalicelib.transport import websocket

    websocket.on_disconnect(runtime.services(), event.connection_id)


@app.on_kinesis_record(stream=settings.event_stream or "zaqar-events", batch_size=100,
                       starting_position="TRIM_HORIZON", name="deliver")
def deliver(event: KinesisEvent) -> dict[str, Any]:
    return lambdas.on_stream(event.to_dict()["Records"], app.websocket_api)


@app.on_sqs_message(queue=settings.retry_queue or "zaqar-retries", batch_size=10, name="retry")
def retry(event: SQSEvent) -> dict[str, Any]:
    return lambdas.on_retry_queue(event.to_dict()["Records"], app.websocket_api)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="relay")
def relay(event: Any) -> int:
    return lambdas.relay()


@app.lambda_function(name="migrate")
def migrate(event: Any, context: Any) -> dict[str, str]:
    """Bring the catalog schema up to date (deploy step; prod sets CATALOG_AUTO_MIGRATE=false)."""
    return lambdas.migrate()


@app.schedule(Rate(5, unit=Rate.MINUTES), name="housekeeping")
def housekeeping(event: Any) -> dict[str, int]:
    return lambdas.housekeeping(app.websocket_api)
