#!/usr/bin/env python3
"""Minimal SMTP sink: speaks enough ESMTP for swaks/smtplib and discards the mail.
Usage: smtp_sink.py --bind ADDR [--port 25] [--name mx.example]
"""
import argparse
import socketserver
import sys


class Handler(socketserver.StreamRequestHandler):
    timeout = 10

    def say(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        name = self.server.name
        self.say("220 %s ESMTP bflab-sink" % name)
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("latin-1").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            sys.stderr.write("smtp %s C: %s\n" % (self.client_address[0], line))
            if verb == "EHLO":
                self.say("250-%s greets %s" % (name, line[5:]))
                self.say("250-SIZE 10240000")
                self.say("250-8BITMIME")
                self.say("250 PIPELINING")
            elif verb == "HELO":
                self.say("250 %s" % name)
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.say("250 OK")
            elif verb == "DATA":
                self.say("354 End data with <CR><LF>.<CR><LF>")
                n = 0
                while True:
                    d = self.rfile.readline()
                    if not d or d in (b".\r\n", b".\n"):
                        break
                    n += len(d)
                self.say("250 OK queued as BFLAB%06d" % n)
            elif verb == "QUIT":
                self.say("221 Bye")
                return
            else:
                self.say("502 Command not implemented")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--name", default="mx.example.net")
    a = ap.parse_args()

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    srv = Server((a.bind, a.port), Handler)
    srv.name = a.name
    sys.stderr.write("smtp sink on %s:%d\n" % (a.bind, a.port))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
