"""The WSGI app plus /static/ (the admin's CSS and JS), for gunicorn where no web server fronts it.

``make run`` and the compose file serve the admin this way; DEBUG stays off. Files come from the
apps' static folders through Django's finders (the same files ``collectstatic`` copies). A
deployment with a proxy or CDN in front serves STATIC_ROOT there and runs balance_project.wsgi.
"""

from django.contrib.staticfiles.handlers import StaticFilesHandler

from balance_project.wsgi import application as django_application

application = StaticFilesHandler(django_application)
