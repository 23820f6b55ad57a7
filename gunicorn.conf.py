"""gunicorn settings read from the project folder (gunicorn's default ``./gunicorn.conf.py``).

Command-line options (workers, bind, ...) still come from the deploy command in README.md.
"""

from gunicorn.http import wsgi as _gunicorn_wsgi

# gunicorn writes "Server: gunicorn" into every response itself (gunicorn/http/wsgi.py:
# ``Response.__init__`` copies the module's SERVER into ``self.version``, and
# ``default_headers`` sends it; HTTP/2 responses reuse it). It has no setting for this,
# and a Server header from the application would be sent in addition, not instead.
# Name the site instead of the server software; workers inherit this from the master.
# tests/test_security_headers.py checks it against a real gunicorn.
_gunicorn_wsgi.SERVER = "sciweek"
