"""Pages of the web UI. Each view reads through a selector and writes through a service with
``actor=request.user``, so the UI can do exactly what the API would allow (docs/architecture.md,
"Layers").

A POST that a service refuses re-renders its page with the refusal as a message and the form
as it was typed, with the status the API would answer; a POST that succeeds redirects (so a
reload does not repeat it) and says what happened.

One module per family of pages, each routed in ``ui/urls.py``:

- ``base``: the ``ui_view`` decorator (signed-in users; a refusal from a read becomes an error
  page) that every page goes through.
- ``models``: the model list and a model's page, its permissions and stage policies.
- ``versions``: a version's page, moving it between stages, retrying its registration, and its
  comments.
- ``transition_requests``: deciding a transition request, and the requests waiting for me.
- ``webhooks``: the webhooks and their deliveries.
- ``tokens``: the signed-in user's API tokens.
"""
