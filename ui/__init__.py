"""The web UI: server-rendered pages over the same services and selectors as the API
(docs/architecture.md, "Layers").

Views parse a form, call one service or selector with ``actor=request.user`` and render; a
refusal (``RegistryError``) becomes a readable message on the page, never a traceback.
"""
