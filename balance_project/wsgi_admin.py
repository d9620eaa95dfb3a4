"""The WSGI app of the admin's own listener: only /admin/ (with its static files) and the probes.

``gunicorn -c balance_project/gunicorn.conf.py -b 127.0.0.1:3003 balance_project.wsgi_admin:application``;
runall starts it when ADMIN_BIND is set. The URLconf is chosen before settings load.
"""

import os

os.environ["BALANCE_HTTP_SERVES"] = "admin"

from balance_project.wsgi_static import application  # after the choice above

__all__ = ["application"]
