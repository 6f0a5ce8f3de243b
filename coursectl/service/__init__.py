"""`course serve`: instant feedback. Students submit a notebook while they work and get
the hidden checks' verdict per unit in seconds, graded by the same chain as `course grade`.

Modules: config (settings, service.toml), store (attempt files and database rows), queue
(fair bounded queue), limits (attempts per hour, minimum interval), tokens (per-student
bearer tokens, stored hashed), auth (who is calling: the Principal), visibility (what a
student sees before and after the deadline), grader (one attempt through `course grade`'s
chain), dispatch (background grading threads), app (the ASGI app), collect (attempts into
submitted/), client (`course submit`), commands (the CLI's subcommands).

Importing this package stays light; FastAPI is imported by app.py only.
"""
