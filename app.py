"""The Chalice app: registers one Blueprint per function folder and nothing else."""

from chalice import Chalice

from functions import catalog

app = Chalice(app_name="retail-suite")
app.register_blueprint(catalog.bp)
