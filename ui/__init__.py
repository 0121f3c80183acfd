"""The web UI: ``expstream ui`` serves read-only pages over the query side (``expstream.query.browse``).

Layers point one way: ``server`` (process, signals) → ``app`` (routes, token, errors) → ``views/``
(one module per page, templates apart, JSON beside each page) → ``expstream.query``.
"""
