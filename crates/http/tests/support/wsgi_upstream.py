"""The WSGI upstream of crates/http/tests/boundary.rs: a naive app under wsgiref.simple_server.

Usage: python3 wsgi_upstream.py PORT RECORDS_FILE. Every request is appended to RECORDS_FILE as
one JSON line: method, the raw target (REQUEST_URI, as the socket carried it), PATH_INFO (which
wsgiref percent-decodes, %2F included), the path the app resolves, and every HTTP_* key. Like a
naive file server, the app resolves PATH_INFO with posixpath.normpath (after turning
backslashes into slashes, as a server for Windows paths would) and answers SECRET-ADMIN when that
lands on /api/admin.
"""

import json
import posixpath
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

PORT = int(sys.argv[1])
RECORDS = sys.argv[2]


class Handler(WSGIRequestHandler):
    def get_environ(self):
        env = super().get_environ()
        env["REQUEST_URI"] = self.path  # wsgiref has no raw target of its own
        return env

    def log_message(self, *args):
        pass


def app(environ, start_response):
    path_info = environ.get("PATH_INFO", "")
    resolved = posixpath.normpath(path_info.replace("\\", "/"))
    secret = resolved == "/api/admin"
    record = {
        "method": environ["REQUEST_METHOD"],
        "target": environ.get("REQUEST_URI", ""),
        "path": path_info,
        "resolved": resolved,
        "query": environ.get("QUERY_STRING", ""),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        "secret": secret,
    }
    with open(RECORDS, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    body = b"SECRET-ADMIN\n" if secret else json.dumps(record).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Server(WSGIServer):
    allow_reuse_address = False


make_server("127.0.0.1", PORT, app, server_class=Server, handler_class=Handler).serve_forever()
