import os

from django.core.wsgi import get_wsgi_application

from balance_project import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "balance_project.settings")
# Before the application loads its middleware: the Django instrumentation adds its own (when on).
tracing.setup("admin" if os.environ.get("BALANCE_HTTP_SERVES") == "admin" else "http")
application = get_wsgi_application()
