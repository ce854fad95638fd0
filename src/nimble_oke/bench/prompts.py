"""Synthetic prompts with an input-length distribution, cut from the shipped corpus.

The corpus (``data/corpus.txt``) is original text generated for this project from a small
hand-written vocabulary, so it carries no licence. Lengths are drawn in *tokens* from a
clipped normal distribution and converted to words with the common English rule of thumb
of ~0.75 words per token (OpenAI, "What are tokens and how to count them?": 1,000 tokens
≈ 750 words). The exact input length is taken afterwards from the server's ``usage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

WORDS_PER_TOKEN = 0.75  # OpenAI rule of thumb, see the module docstring


@lru_cache(maxsize=1)
def corpus_words() -> tuple[str, ...]:
    """The corpus as a tuple of whitespace-separated words (read once)."""
    text = resources.files("nimble_oke.bench").joinpath("data/corpus.txt").read_text("utf-8")
    return tuple(text.split())


@dataclass(frozen=True)
class Prompt:
    """One request's input: the text and the token length it was drawn for."""

    text: str
    target_tokens: int


def input_lengths(
    count: int, *, mean: int, sd: float, low: int, high: int, seed: int
) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    """``count`` input lengths in tokens ~ N(mean, sd) rounded and clipped to [low, high]."""
    rng = np.random.default_rng(seed)
    draws = rng.normal(mean, sd, size=count) if sd > 0 else np.full(count, float(mean))
    return np.clip(np.rint(draws), low, high).astype(np.int64)


def make_prompts(
    count: int, *, mean: int, sd: float, low: int, high: int, seed: int
) -> list[Prompt]:
    """Prompts of drawn lengths; each starts with a unique request tag so that a server's
    prefix cache cannot serve two requests from the same cached prefix."""
    words = corpus_words()
    rng = np.random.default_rng(seed + 1)
    prompts: list[Prompt] = []
    lengths = input_lengths(count, mean=mean, sd=sd, low=low, high=high, seed=seed)
    for i, tokens in enumerate(lengths):
        n_words = max(1, round(int(tokens) * WORDS_PER_TOKEN))
        start = int(rng.integers(0, len(words)))
        picked = [words[(start + k) % len(words)] for k in range(n_words)]
        prompts.append(Prompt(f"[{seed}-{i}] " + " ".join(picked), int(tokens)))
    return prompts
