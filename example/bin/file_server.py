#!/usr/bin/env python3
"""A tiny loopback file server for the request-data example.

Serves the directory given by --root (example/data) over HTTP:

  GET /datasets/<data_id>.json   open: the list of files of a data set
  GET /files/...                 needs "Authorization: Basic base64(user:password)"

It stands in for the spec's REST server, so the example runs on one machine
without internet. A download without the right Authorization header gets
401, which shows that the job's http-header input reached the wget tasks.
"""
import argparse
import base64
import functools
import hmac
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    expected_auth = ""

    def _authorized(self):
        if not self.path.startswith("/files/"):
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), self.expected_auth.encode())

    def do_GET(self):
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="shoal example"')
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "13")
            self.end_headers()
            self.wfile.write(b"unauthorized\n")
            return
        super().do_GET()

    def do_HEAD(self):
        if not self._authorized():
            self.send_response(401)
            self.end_headers()
            return
        super().do_HEAD()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--root", required=True, help="directory to serve (example/data)")
    ap.add_argument("--user", default="demo")
    ap.add_argument("--password", default="demo")
    args = ap.parse_args()

    token = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    Handler.expected_auth = "Basic " + token
    handler = functools.partial(Handler, directory=args.root)
    server = http.server.ThreadingHTTPServer((args.bind, args.port), handler)
    print(f"serving {args.root} on http://{args.bind}:{server.server_port}",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
