#!/usr/bin/env python3
"""Static server for the camsam app, bound to 127.0.0.1 only.

Serves the repository root (index.html, www/, pkg/) with correct MIME types (application/wasm
for .wasm, text/javascript for .js/.mjs) and a Content-Security-Policy on every response, so
the page and its Web Worker can reach nothing but this origin; `Service-Worker-Allowed: /` on
www/sw.js lets the offline copy serve the page at the root. What each header enables: README,
"Hosting the built site". No logging of file contents, no other routes.

Usage: python3 www/serve.py [--port 8080] [--root DIR] [--no-isolation]
Prints "serving http://127.0.0.1:<port>/" once listening (port 0 picks a free one).
"""
import argparse
import functools
import http.server
import os
import sys

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    "connect-src 'self'",
    "img-src 'self' blob: data:",
    "style-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".css": "text/css",
        ".html": "text/html; charset=utf-8",
        ".png": "image/png",
        ".svg": "image/svg+xml",
    }

    def end_headers(self):
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        # Cross-origin isolation: lets the page share memory (SharedArrayBuffer) with its
        # workers: the cancel flag, and the CPU model's helper workers (all cores); everything
        # the page loads is same-origin, so nothing else changes. `--no-isolation` serves the
        # page as a plain static host would (one thread).
        if self.server.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        # The offline copy (www/sw.js) serves the page at the root: a worker script in www/ may
        # only take the root as its scope when the response allows it.
        if self.path.split("?", 1)[0] == "/www/sw.js":
            self.send_header("Service-Worker-Allowed", "/")
        super().end_headers()

    def log_message(self, fmt, *args):
        if os.environ.get("CAMSAM_SERVE_QUIET"):
            return
        super().log_message(fmt, *args)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--no-isolation", action="store_true",
                    help="no COOP/COEP headers, as a plain static host (the CPU model runs on one thread)")
    args = ap.parse_args()
    handler = functools.partial(Handler, directory=os.path.abspath(args.root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler) as httpd:
        httpd.isolated = not args.no_isolation
        port = httpd.server_address[1]
        print(f"serving http://127.0.0.1:{port}/", flush=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            sys.exit(0)


if __name__ == "__main__":
    main()
