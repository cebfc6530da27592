#!/usr/bin/env python3
"""Deliberately open HTTP forward proxy (the misconfiguration backflow must spot).

Serves a local page for origin-form requests ("GET / HTTP/1.1"), relays
absolute-form requests ("GET http://host/ HTTP/1.1") and tunnels CONNECT.
Outbound legs are bound to --source so they leave from the web server's address.
Usage: proxy.py --bind ADDR --port PORT --source ADDR
"""
import argparse
import select
import socket
import socketserver
import sys
from urllib.parse import urlsplit

IDLE = 5.0


def relay(a, b):
    socks = [a, b]
    while True:
        r, _, _ = select.select(socks, [], [], IDLE)
        if not r:
            return
        for s in r:
            data = s.recv(65536)
            if not data:
                return
            (b if s is a else a).sendall(data)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        c = self.request
        c.settimeout(IDLE)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = c.recv(4096)
            if not chunk:
                return
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [l for l in lines[1:] if l]
        src = (self.server.source, 0)
        log = "proxy %s:%d %s %s\n" % (self.client_address[0], self.client_address[1], method, target)
        sys.stderr.write(log)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            up = socket.create_connection((host.strip("[]"), int(port)), timeout=IDLE, source_address=src)
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                up.sendall(rest)
            relay(c, up)
            up.close()
        elif target.startswith("http://"):
            u = urlsplit(target)
            path = u.path or "/"
            if u.query:
                path += "?" + u.query
            keep = [h for h in headers if not h.lower().startswith(("proxy-connection:", "connection:"))]
            req = "%s %s %s\r\n%s\r\nConnection: close\r\n\r\n" % (method, path, version, "\r\n".join(keep))
            up = socket.create_connection((u.hostname, u.port or 80), timeout=IDLE, source_address=src)
            up.sendall(req.encode("latin-1") + rest)
            while True:
                data = up.recv(65536)
                if not data:
                    break
                c.sendall(data)
            up.close()
        else:
            body = b"<html><body><h1>web01</h1></body></html>\n"
            c.sendall(b"HTTP/1.1 200 OK\r\nServer: bflab-proxy/1.0\r\nContent-Type: text/html\r\n"
                      b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--source", required=True)
    a = ap.parse_args()

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    srv = Server((a.bind, a.port), Handler)
    srv.source = a.source
    sys.stderr.write("proxy listening on %s:%d, outbound from %s\n" % (a.bind, a.port, a.source))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
