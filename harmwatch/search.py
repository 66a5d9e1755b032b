"""The Elasticsearch client, and the folding that the minimal distribution lacks.

The integ-test Elasticsearch distribution used here has no ``analysis-common`` module
(no ``asciifolding``) and no scripting, and the production image may be locked down
too. So diacritics are folded in Python: every text field that analysts search has a
``*_folded`` twin written by the indexer, and queries are folded the same way. The same
code then runs unchanged on the full production image.
"""

from __future__ import annotations

import unicodedata

from elasticsearch import Elasticsearch

from harmwatch.settings import Settings

# Letters that Unicode decomposition does not reduce to ASCII.
_EXTRA_FOLDS = str.maketrans({"đ": "d", "Đ": "D", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
                              "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE"})


def fold(text: str) -> str:
    """Lower-case ASCII-folded text: 'Trẻ em Đà Nẵng' -> 'tre em da nang'."""
    decomposed = unicodedata.normalize("NFD", text.translate(_EXTRA_FOLDS))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return unicodedata.normalize("NFC", stripped).lower()


def es_client(settings: Settings, **overrides) -> Elasticsearch:
    auth = None
    if settings.es_username and settings.es_password:
        auth = (settings.es_username, settings.es_password)
    options = {
        "basic_auth": auth,
        "request_timeout": 30,
        "retry_on_timeout": True,
        "max_retries": 3,
    }
    options.update(overrides)
    return Elasticsearch(settings.es_url, **options)


def server_version(client: Elasticsearch) -> str:
    """The node's version. (``GET /`` is absent from the minimal distribution.)"""
    nodes = client.nodes.info(node_id="_local", filter_path="nodes.*.version")["nodes"]
    return next(iter(nodes.values()))["version"]
