"""A word-level CLIPTokenizer built in code from the captions' vocabulary.

Every known word is one token. CLIP's byte-pair merges join a word from its end backwards, so a merge
list holding each suffix of each word turns every known word into a single token; an unknown word falls
apart into letters instead of failing. Saved with `save_pretrained`, it loads like any CLIP tokenizer.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from transformers import CLIPTokenizer

MAX_TOKENS = 32
START, END = "<|startoftext|>", "<|endoftext|>"
_END_OF_WORD = "</w>"


def build_tokenizer(words: list[str]) -> CLIPTokenizer:
    tokens: list[str] = [START, END]
    merges: list[tuple[str, str]] = []

    def add(token: str) -> None:
        if token not in tokens:
            tokens.append(token)

    for char in string.ascii_lowercase + string.digits + string.punctuation:
        add(char)
        add(char + _END_OF_WORD)
    for word in words:
        # "red": (d</w>), (e, d</w>) -> ed</w>, (r, ed</w>) -> red</w>
        suffix = word[-1] + _END_OF_WORD
        for char in reversed(word[:-1]):
            pair = (char, suffix)
            suffix = char + suffix
            if pair not in merges:
                merges.append(pair)
            add(suffix)
    return CLIPTokenizer(
        vocab={token: index for index, token in enumerate(tokens)},
        merges=merges,
        bos_token=START,
        eos_token=END,
        pad_token=END,
        unk_token=END,
        model_max_length=MAX_TOKENS,
    )


def save_tokenizer(tokenizer: CLIPTokenizer, folder: Path) -> None:
    """`save_pretrained`, plus vocab.json and merges.txt for CLIPTokenizer versions that read those."""
    tokenizer.save_pretrained(folder)
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"]))
    merges = [" ".join(pair) if isinstance(pair, list) else pair for pair in model["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{pair}\n" for pair in merges))
