#!/usr/bin/env python3
"""Writes a tiny random-weight llama-architecture GGUF whose vocabulary is a Hugging Face
byte-level BPE tokenizer.json (the project's built-in tokenizer), for tests/engine/llama-server.sh.

Vocabulary: the tokenizer's tokens keep their ids and its merges their ranks; llama.cpp reads them
as a `gpt2` model with the `gpt-2` pre-tokenizer, whose split is the ByteLevel GPT-2 regex, so the
server tokenizes any text to the same ids as the tokenizer. llama.cpp needs an end-of-generation
token: one control token, <|endoftext|>, is appended after the vocabulary (id = vocabulary size),
so no existing id moves. No BOS or EOS is added to prompts.

Output shaping, so that the server is a predictable target: every token embedding carries a
constant 1.0 in hidden dim 0, which the blocks neither read (norm gain 0) nor write; after the
final norm that dim is a constant, so the lm_head weight in dim 0 is a per-token logit bias. The
control token and the tokens that are not valid UTF-8 by themselves get a bias of -30: the model
never stops before max_tokens and every token decodes to text of its own (one SSE chunk, one
token). The other dims keep the logits random and context-dependent.

Needs the PyPI packages gguf and numpy.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import gguf
import numpy as np

EOS_TEXT = "<|endoftext|>"

# Role and content on lines of their own: the newline ends a pre-token, so the template never
# changes how the content tokenizes, and its overhead is a constant per message.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}{%- set content = message['content'] -%}"
    "{%- else -%}{%- set content = message['content'] | map(attribute='text') | join('') -%}{%- endif -%}"
    "{{- message['role'] + '\\n' + content + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'assistant\\n' -}}{%- endif -%}"
)


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, printable char -> byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def load_vocab(path: str) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    model = tj["model"]
    pre = tj.get("pre_tokenizer") or {}
    if model.get("type") != "BPE" or pre.get("type") != "ByteLevel" or not pre.get("use_regex", True):
        sys.exit(f"{path}: expected a BPE model with the ByteLevel (use_regex) pre-tokenizer")
    if pre.get("add_prefix_space") or tj.get("normalizer") or tj.get("added_tokens"):
        sys.exit(f"{path}: prefix space, normalizer or added tokens have no llama.cpp `gpt-2` equivalent")
    vocab: dict[str, int] = model["vocab"]
    tokens = [""] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    if "" in tokens:
        sys.exit(f"{path}: token ids are not 0..{len(vocab) - 1}")
    # Merges are "a b" strings in older files and [a, b] pairs in newer ones; GGUF wants strings.
    merges = [m if isinstance(m, str) else f"{m[0]} {m[1]}" for m in model["merges"]]
    return tokens, merges


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", required=True, help="Hugging Face tokenizer.json (byte-level BPE)")
    p.add_argument("--out", required=True)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-head-kv", type=int, default=2)
    p.add_argument("--n-ff", type=int, default=768)
    p.add_argument("--ctx", type=int, default=65536)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--std", type=float, default=0.02, help="std of the random weights")
    p.add_argument("--out-std", type=float, default=0.1, help="std of the random lm_head weights")
    p.add_argument("--suppress-bias", type=float, default=-30.0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)

    tokens, merges = load_vocab(a.tokenizer)
    n_base = len(tokens)
    if EOS_TEXT in tokens:
        sys.exit(f"{a.tokenizer}: already holds {EOS_TEXT}")
    eos_id = n_base
    tokens.append(EOS_TEXT)
    types = [int(gguf.TokenType.NORMAL)] * n_base + [int(gguf.TokenType.CONTROL)]
    n_vocab = len(tokens)

    bias = np.zeros(n_vocab, dtype=np.float32)
    bias[eos_id] = a.suppress_bias
    dec = byte_decoder()
    n_partial = 0
    for i, t in enumerate(tokens[:n_base]):
        try:
            bytes(dec[c] for c in t).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            bias[i] = a.suppress_bias
            n_partial += 1

    E, L, H, HKV, F = a.n_embd, a.n_layer, a.n_head, a.n_head_kv, a.n_ff
    assert E % H == 0 and H % HKV == 0
    hd = E // H

    def rnd(*shape: int, std: float | None = None) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(a.std if std is None else std)

    tok_embd = rnd(n_vocab, E)
    tok_embd[:, 0] = 1.0
    # After RMSNorm, dim 0 is about 1/rms of the residual: scale the bias by it.
    h0 = 1.0 / np.sqrt((1.0 + (E - 1) * a.std**2) / E)
    output = rnd(n_vocab, E, std=a.out_std)
    output[:, 0] = bias / h0

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name("tiny-random-builtin-vocab")
    w.add_context_length(a.ctx)
    w.add_embedding_length(E)
    w.add_block_count(L)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(HKV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    # Without explicit ids llama.cpp would default BOS/EOS to an id of the vocabulary.
    w.add_bos_token_id(eos_id)
    w.add_eos_token_id(eos_id)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def matrix(name: str, m: np.ndarray) -> None:
        w.add_tensor(name, m.astype(np.float16))

    def norm(name: str, hide_dim0: bool) -> None:
        g = np.ones(E, dtype=np.float32)
        if hide_dim0:
            g[0] = 0.0  # the blocks do not see the bias carrier
        w.add_tensor(name, g)

    def no_dim0(m: np.ndarray) -> np.ndarray:
        m[0, :] = 0.0  # the blocks never write into the bias carrier
        return m

    matrix("token_embd.weight", tok_embd)
    for il in range(L):
        norm(f"blk.{il}.attn_norm.weight", True)
        matrix(f"blk.{il}.attn_q.weight", rnd(H * hd, E))
        matrix(f"blk.{il}.attn_k.weight", rnd(HKV * hd, E))
        matrix(f"blk.{il}.attn_v.weight", rnd(HKV * hd, E))
        matrix(f"blk.{il}.attn_output.weight", no_dim0(rnd(E, H * hd)))
        norm(f"blk.{il}.ffn_norm.weight", True)
        matrix(f"blk.{il}.ffn_gate.weight", rnd(F, E))
        matrix(f"blk.{il}.ffn_up.weight", rnd(F, E))
        matrix(f"blk.{il}.ffn_down.weight", no_dim0(rnd(E, F)))
    norm("output_norm.weight", False)
    matrix("output.weight", output)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e6:.1f} MB): vocab {n_base} + {EOS_TEXT}={eos_id}, "
          f"{len(merges)} merges, {n_partial} partial-UTF-8 tokens suppressed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
