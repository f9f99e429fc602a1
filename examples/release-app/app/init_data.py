"""Creates the app's data folders and its database schema under SHARED (the release
target's shared/ folder) when they are missing; data already there is left alone."""

import os
import sqlite3
import sys

shared = sys.argv[1]
os.makedirs(os.path.join(shared, "db"), exist_ok=True)
os.makedirs(os.path.join(shared, "uploads"), exist_ok=True)
db = sqlite3.connect(os.path.join(shared, "db", "app.db"))
db.execute(
    "CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, path TEXT NOT NULL, at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
)
db.commit()
db.close()
