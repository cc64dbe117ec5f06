"""Bundle format v2: a folder of what real systems write, read with no conversion script.

Each file is recognised by its content (`detect.py`: every reader sniffs the first bytes), read by
the reader made for its shape (Prometheus samples, OTLP spans, JSON/logfmt/plain logs, database
server logs, deploy logs, Alertmanager payloads, …) into the canonical tables, and the folder's
reads are merged (`folder.py`). Every reader says what it detected and what it derived, so
`warroom bundle validate` can show it, and carries the query (the file and its selection) behind
each table. docs/bundle-format.md describes the accepted shapes.
"""
