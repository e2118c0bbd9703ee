"""The request types of code that only signed-in users reach.

The stubs type ``request.user`` as a user or ``AnonymousUser``. Where only a signed-in user
can get to the code, it is a ``User``: every API view (DRF's default permission class is
``IsAuthenticated``), every web UI page (``login_required``) and every admin page (the admin
site lets in active staff users only). Annotating ``request`` with these types says so to the
type checker; at run time they are DRF's ``Request`` and Django's ``HttpRequest`` themselves
(docs/decisions/0014).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest
from rest_framework.request import Request

if TYPE_CHECKING:
    from accounts.models import User

    class SignedInRequest(Request):
        """A DRF request whose user passed authentication."""

        user: User

    class SignedInHttpRequest(HttpRequest):
        """A Django request whose user is signed in."""

        user: User

else:
    SignedInRequest = Request
    SignedInHttpRequest = HttpRequest
