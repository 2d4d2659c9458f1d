"""The Chalice app: registers one Blueprint per function folder and nothing else."""

from chalice import Chalice

from functions import (
    catalog,
    checkout,
    commission,
    coupons,
    edge,
    flash_sales,
    guides,
    inventory,
    membership,
    notifications,
    payments,
    promotions,
    relay,
    reporting,
    settlement,
)

app = Chalice(app_name="retail-suite")
app.register_blueprint(catalog.bp)
app.register_blueprint(checkout.bp)
app.register_blueprint(commission.bp)
app.register_blueprint(coupons.bp)
app.register_blueprint(edge.bp)
app.register_blueprint(flash_sales.bp)
app.register_blueprint(guides.bp)
app.register_blueprint(inventory.bp)
app.register_blueprint(membership.bp)
app.register_blueprint(notifications.bp)
app.register_blueprint(payments.bp)
app.register_blueprint(promotions.bp)
app.register_blueprint(relay.bp)
app.register_blueprint(reporting.bp)
app.register_blueprint(settlement.bp)
