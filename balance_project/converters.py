"""URL converters shared by the apps' routes."""

from django.urls import register_converter

from balance_project.money import INT64_MAX


class Int64IdConverter:
    """1 to 2**63-1: a larger number matches no route (404) instead of overflowing a query."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= INT64_MAX:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(Int64IdConverter, "id64")
