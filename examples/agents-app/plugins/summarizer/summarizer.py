"""Summarizer plugin: pick the highest-scoring sentences of a text."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[^\W\d_]+")
_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from"}
    | {"in", "is", "it", "of", "on", "or", "that", "the", "to", "with"}
)


def summarize(text: str, max_sentences: int = 2) -> list[str]:
    """Return up to ``max_sentences`` sentences, in original order."""
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    freq = Counter(w for w in _WORD.findall(text.lower()) if w not in _STOP)

    def score(sentence: str) -> int:
        return sum(freq[w] for w in _WORD.findall(sentence.lower()))

    ranked = sorted(range(len(sentences)), key=lambda i: (-score(sentences[i]), i))
    return [sentences[i] for i in sorted(ranked[:max_sentences])]


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    """Summarize ``{"text": str, "title": str?, "max_sentences": int?}``."""
    from slugify import slugify  # third-party: python-slugify

    text = str(payload.get("text", payload.get("markdown", "")))
    title = str(payload.get("title", "summary"))
    sentences = summarize(text, int(payload.get("max_sentences", 2)))
    return {
        "event": "summary.ready",
        "slug": slugify(title),
        "summary": " ".join(sentences),
        "sentence_count": len(sentences),
    }
