"""The service's production settings plus one route, ``/bench/floor``, used only by
``bench/compare.py``: a trivial JSON view that runs one SQL query through the same stack
(gunicorn, every middleware, the database connection settings), with no REST framework, no
authentication and no serializer. Its rate is the ceiling any API view of this stack can reach
on the machine: the "floor" of per-request overhead. The production URLconf never has it.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "floor_urls"
