"""The Chalice app: registers one Blueprint per function folder and nothing else."""

from chalice import Chalice

from functions import catalog, checkout, inventory

app = Chalice(app_name="retail-suite")
app.register_blueprint(catalog.bp)
app.register_blueprint(checkout.bp)
app.register_blueprint(inventory.bp)
