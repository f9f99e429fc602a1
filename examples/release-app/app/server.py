"""The example app: `/health` answers 200 while its database opens, `/build` names
the commit it was built from, any other path is recorded as a visit. Runs from its
release folder, where `db/` and `uploads/` are links to the target's shared folders."""

import http.server
import json
import os
import sqlite3

RELEASE = os.path.dirname(os.path.realpath(__file__))
BUILD = open(os.path.join(RELEASE, "REVISION")).read().strip()
PORT = int(open(os.path.join(RELEASE, "PORT")).read().strip())
DB = os.path.join(RELEASE, "db", "app.db")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/build":
            self.answer(200, "text/plain", BUILD)
            return
        try:
            db = sqlite3.connect(f"file:{DB}?mode=rw", uri=True)
            if self.path == "/health":
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                body = {"status": "UP", "build": BUILD}
            else:
                db.execute("INSERT INTO visits (path) VALUES (?)", (self.path,))
                db.commit()
                body = {"visits": db.execute("SELECT count(*) FROM visits").fetchone()[0]}
            db.close()
            self.answer(200, "application/json", json.dumps(body))
        except sqlite3.Error as e:
            self.answer(503, "application/json", json.dumps({"status": "DOWN", "error": str(e)}))

    def answer(self, status, kind, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
