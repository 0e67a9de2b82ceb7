"""The Chalice app: wiring only. Each transport registers its own handlers."""

from chalice.app import Chalice

from chalicelib.transport import rest

app = Chalice(app_name="zaqar-serverless")
app.register_blueprint(rest.bp)
