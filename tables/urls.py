"""HTTP routes of the tables app, mounted under /api/v1/."""

from django.urls import path, register_converter

from tables import api


class TableIdConverter:
    """The ids tables.seating.table_id_check accepts; anything else matches no route (404)."""

    regex = "[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(TableIdConverter, "table_id")

urlpatterns: list = [
    path("tables", api.TablesView.as_view(), name="tables"),
    path("tables/<table_id:table_id>", api.TableDetailView.as_view(), name="table-detail"),
    path("tables/<table_id:table_id>/close", api.TableCloseView.as_view(), name="table-close"),
    path("tables/<table_id:table_id>/buy-in", api.TableBuyInView.as_view(), name="table-buy-in"),
    path("tables/<table_id:table_id>/hands", api.TableHandsView.as_view(), name="table-hands"),
    path("tables/<table_id:table_id>/cash-out", api.TableCashOutView.as_view(), name="table-cash-out"),
]
