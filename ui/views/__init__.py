"""Pages of the web UI. Each view reads through a selector and writes through a service with
``actor=request.user``, so the UI can do exactly what the API would allow (docs/architecture.md,
"Layers").

Every POST redirects to the page that shows its form (post/redirect/get, ``base.refuse`` for
a refusal: the message, and what was typed kept for that page), so a reload repeats nothing;
docs/ui.md, "Forms".

One module per family of pages, each routed in ``ui/urls.py``:

- ``base``: the ``ui_view`` (pages) and ``ui_form`` (form addresses) decorators every view goes
  through, and ``refuse``.
- ``models``: the model list and a model's page, its permissions and stage policies.
- ``versions``: a version's page, moving it between stages, retrying its registration, and its
  comments.
- ``transition_requests``: deciding a transition request, and the requests waiting for me.
- ``webhooks``: the webhooks and their deliveries.
- ``tokens``: the signed-in user's API tokens.
"""
