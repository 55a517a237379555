"""The staff console: the alert desk in a browser (FastAPI, server-rendered pages, htmx).

It is a gRPC client of the alert desk and nothing else: region scoping, masking,
optimistic versions and the read audit stay in the desk. The console holds a signed-in
person's desk token in a server-side session and calls the desk with it, so every page
shows exactly what the desk lets that person see.
"""
