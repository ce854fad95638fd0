"""The emulator's tokenizer and deterministic text generator.

Tokenizer: every run of word characters is split into pieces of at most
:data:`MAX_PIECE` characters, and every other non-space character is a token of its own.
Generated tokens are vocabulary words (≤ ``MAX_PIECE`` letters, with a leading space) or
punctuation, so ``count_tokens(generated_text)`` equals the number of generated tokens —
``usage`` and the streamed chunks always agree.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence

MAX_PIECE = 8
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")

# Chat template overhead per message and for the assistant primer (like OpenAI's counting).
TOKENS_PER_MESSAGE = 3
TOKENS_ASSISTANT_PRIMER = 3

_VOCABULARY_TEXT = (
    "the a of to and in is it that for on with as by at from this model GPU node "
    "cluster cache token fast slow run runs served ready load weights batch prefill "
    "decode stream queue memory latency output input answer test value small large "
    "cloud oracle nvidia kernel tensor layer head vector matrix shard disk volume pod "
    "image pull start stop budget cost price hour minute second byte bytes rate time "
    "sky blue green red light dark sun moon star river hill tree leaf stone wind rain "
    "we you they he she one two three four five many some all each every other new old"
)
VOCABULARY = tuple(_VOCABULARY_TEXT.split(" "))
_PUNCT = (".", ",")
assert all(len(w) <= MAX_PIECE for w in VOCABULARY)


def count_tokens(text: str) -> int:
    """Number of tokens in ``text`` under the emulator's tokenizer."""
    total = 0
    for match in _TOKEN_RE.finditer(text):
        piece = match.group(0)
        total += -(-len(piece) // MAX_PIECE) if piece[0].isalnum() or piece[0] == "_" else 1
    return total


def count_chat_tokens(messages: Iterable[tuple[str, str]]) -> int:
    """Prompt tokens of a chat: (role, content) pairs plus template overhead."""
    total = TOKENS_ASSISTANT_PRIMER
    for role, content in messages:
        total += TOKENS_PER_MESSAGE + count_tokens(role) + count_tokens(content)
    return total


def request_rng(
    seed: int, prompt_key: str, temperature: float, request_seed: int | None
) -> random.Random:
    """A generator that is identical for identical prompts at temperature 0 (or with an
    explicit request ``seed``), and different per request otherwise."""
    if temperature > 0 and request_seed is None:
        return random.Random()
    digest = hashlib.sha256(f"{seed}|{request_seed}|{prompt_key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def natural_length(rng: random.Random) -> int:
    """Where the model would stop (its EOS) if not limited: 24–160 tokens."""
    return rng.randint(24, 160)


def generate_tokens(rng: random.Random, count: int) -> list[str]:
    """``count`` token strings forming sentence-like text."""
    tokens: list[str] = []
    since_punct = 0
    for i in range(count):
        if since_punct >= 4 and rng.random() < 0.15 and i < count - 1:
            tokens.append(rng.choice(_PUNCT))
            since_punct = 0
            continue
        word = rng.choice(VOCABULARY)
        if i == 0 or (tokens and tokens[-1] == "."):
            word = word[:1].upper() + word[1:]
        tokens.append(word if i == 0 else " " + word)
        since_punct += 1
    return tokens


def join_tokens(tokens: Sequence[str]) -> str:
    return "".join(tokens)


_PIECE_RE = re.compile(r"\s*(?:\w{1,MAX}|[^\w\s])".replace("MAX", str(MAX_PIECE)))


def split_tokens(text: str) -> list[str]:
    """``text`` as the emulator's token strings: ``"".join(split_tokens(t)) == t`` and
    ``len(split_tokens(t)) == count_tokens(t)`` for any text with a non-space character
    (whitespace rides on the next token; trailing whitespace on the last one)."""
    pieces = _PIECE_RE.findall(text)
    consumed = sum(len(p) for p in pieces)
    if consumed < len(text):
        tail = text[consumed:]
        if pieces:
            pieces[-1] += tail
        else:
            pieces = [tail]  # whitespace only: one token (count_tokens says 0)
    return pieces


class TokenTable:
    """Token ids for the emulator's tokenizer (``/tokenize``, ``stop_token_ids``, logprob
    bytes). Vocabulary words, with and without a leading space and capitalised, and ASCII
    punctuation have fixed ids; any other piece gets the next free id on first sight (per
    process), so ``detokenize(tokenize(t)) == t`` for every text seen."""

    FIRST_DYNAMIC = 1000

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self._ids: dict[str, int] = {}
        self._strs: dict[int, str] = {}
        for code in range(33, 127):
            char = chr(code)
            if not char.isalnum() and char != "_":
                self._bind(char, code)
        next_id = 200
        for word in VOCABULARY:
            for form in (word, " " + word, word[:1].upper() + word[1:], " " + word.title()):
                if form not in self._ids:
                    self._bind(form, next_id)
                    next_id += 1
        self._next = max(self.FIRST_DYNAMIC, next_id)

    def _bind(self, piece: str, token_id: int) -> None:
        self._ids[piece] = token_id
        self._strs[token_id] = piece

    def id_of(self, piece: str) -> int:
        token_id = self._ids.get(piece)
        if token_id is None:
            if self._next >= self.vocab_size or len(self._ids) > 200_000:
                # Out of room (a flood of unique text): a stable id within the vocabulary.
                digest = hashlib.sha256(piece.encode()).digest()
                return self.FIRST_DYNAMIC + int.from_bytes(digest[:4], "big") % (
                    self.vocab_size - self.FIRST_DYNAMIC
                )
            token_id = self._next
            self._next += 1
            self._bind(piece, token_id)
        return token_id

    def ids(self, text: str) -> list[int]:
        return [self.id_of(p) for p in split_tokens(text)]

    def piece(self, token_id: int) -> str | None:
        return self._strs.get(token_id)
