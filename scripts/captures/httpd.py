#!/usr/bin/env python3
"""Tiny HTTP/HTTPS server for the backflow capture lab.

Answers every GET/HEAD with a small HTML page naming the server and path.
Usage: httpd.py --bind ADDR --port PORT [--tls CERT KEY] [--label TEXT]
"""
import argparse
import http.server
import socket
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bflab-httpd/1.0"
    sys_version = ""

    def _page(self, send_body):
        body = (
            "<html><head><title>%s</title></head><body><h1>%s</h1>"
            "<p>You asked for %s</p></body></html>\n"
            % (self.server.label, self.server.label, self.path)
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def do_GET(self):
        self._page(True)

    def do_HEAD(self):
        self._page(False)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length:
            self.rfile.read(length)
        self._page(True)

    def log_message(self, fmt, *args):
        sys.stderr.write("httpd %s:%s %s\n" % (self.client_address[0], self.client_address[1], fmt % args))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--label", default="bflab web")
    a = ap.parse_args()

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in a.bind else socket.AF_INET
        allow_reuse_address = True
        daemon_threads = True

    srv = Server((a.bind, a.port), Handler)
    srv.label = a.label
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    sys.stderr.write("httpd listening on %s:%d tls=%s\n" % (a.bind, a.port, bool(a.tls)))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
