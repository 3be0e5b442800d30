#!/usr/bin/python3
"""The town hall's citizen portal: a page of council notices read from PostgreSQL.

Small on purpose: it is the lab's example of a web service backed by a database, which backups
protect and DR drills recover and probe (GET / must answer 200 with the title and the notices;
GET /health answers 200 only when the database answers).
"""

import configparser
import html
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2


def load(path):
    config = configparser.ConfigParser(interpolation=None)
    if not config.read(path):
        sys.exit(f"portal: cannot read configuration {path}")
    return config


class Portal(BaseHTTPRequestHandler):
    config = None

    def _db(self):
        db = self.config["database"]
        return psycopg2.connect(host=db["host"], port=db.getint("port"), dbname=db["name"],
                                user=db["user"], password=db["password"], connect_timeout=3)

    def do_GET(self):  # noqa: N802 - http.server's naming
        try:
            with self._db() as conn, conn.cursor() as cur:
                cur.execute("SELECT published, title, body FROM notices ORDER BY published DESC, id")
                notices = cur.fetchall()
        except psycopg2.Error as exc:
            self._send(503, f"<p>database unavailable: {html.escape(str(exc).strip())}</p>")
            return
        if self.path == "/health":
            self._send(200, "ok", content_type="text/plain")
            return
        if self.path != "/":
            self._send(404, "<p>not found</p>")
            return
        items = "\n".join(
            f"<li><time>{published}</time> <b>{html.escape(title)}</b>: {html.escape(body)}</li>"
            for published, title, body in notices
        )
        self._send(200, f"<ul>\n{items}\n</ul>")

    def _send(self, status, body, content_type="text/html; charset=utf-8"):
        title = html.escape(self.config["portal"]["title"])
        page = body if content_type.startswith("text/plain") else (
            f"<!doctype html><html><head><title>{title}</title></head>"
            f"<body><h1>{title}</h1>\n{body}\n</body></html>\n")
        data = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("portal: " + (fmt % args) + "\n")


def main():
    config = load(sys.argv[1] if len(sys.argv) > 1 else "/etc/twinsite-portal/portal.ini")
    Portal.config = config
    server = ThreadingHTTPServer(("0.0.0.0", config["portal"].getint("port")), Portal)  # noqa: S104
    server.serve_forever()


if __name__ == "__main__":
    main()
