"""Web researcher plugin: rank an offline page corpus against a query.

The legacy app pre-fetches pages; this plugin never touches the network.
"""

from __future__ import annotations

import re
from typing import Any

_WORD = re.compile(r"\w+")

DEFAULT_CORPUS: dict[str, str] = {
    "https://docs.python.org/3/library/json.html": "json encoder decoder python objects",
    "https://www.postgresql.org/docs/current/datatype-json.html": "postgresql jsonb json types",
    "https://kubernetes.io/docs/concepts/workloads/": "kubernetes workloads pods deployments",
}


def tokens(text: str) -> set[str]:
    """Lower-cased word set of ``text``."""
    return set(_WORD.findall(text.lower()))


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    """Rank ``{"query": str, "corpus": {url: text}?, "top": int?}``."""
    query = tokens(str(payload.get("query", "")))
    corpus: dict[str, str] = payload.get("corpus") or DEFAULT_CORPUS
    scores = {url: len(query & tokens(text)) for url, text in corpus.items()}
    found = [url for url, score in scores.items() if score > 0]
    ranked = sorted(found, key=lambda u: (-scores[u], u))
    hits = [{"url": url, "score": scores[url]} for url in ranked[: int(payload.get("top", 3))]]
    return {
        "event": "research.done",
        "query": sorted(query),
        "findings": [hit["url"] for hit in hits],
        "hits": hits,
    }
