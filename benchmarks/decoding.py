"""Decoding speed and agreement against Hugging Face's RAG, on tiny random weights (no download).

One run, the same weights and inputs for both libraries: a batch of 16 questions, beam 4, at K = 5 and K = 20.
    rag_token_time_ratio_vs_hf     ours / RagTokenForGeneration.generate           (goal ≤ 0.5)
    rag_token_identical_to_hf      every returned sequence equal, token for token
    thorough_time_ratio_vs_hf      ours (thorough) / RagSequenceForGeneration.generate   (goal ≤ 0.5)
    thorough_best_agrees_with_hf   the best sequence of every question equal
    fast_over_thorough_time_ratio  ours fast / ours thorough

The generator is a random BART (d_model 32, 2 + 2 layers, vocabulary 300, init_std 0.3 so passages matter);
each context is L = 128 tokens, the length of ragedu's generator input (`Generator.max_input_len`); answers
run to max_len = 20 tokens. Timings are the best of a few interleaved rounds on one thread (see --threads).

Settings shared with HF so both compute the same thing: no forced BOS/EOS, min_length 0, no n-gram blocking,
early_stopping False, HF's max_length = 1 + our max_len (it counts the decoder start token).
Subtle: HF's RAG-Sequence generate runs its per-passage beams with attention_mask=None, so the encoder sees
padding; the contexts here are unpadded so that both read the same input.

    python benchmarks/decoding.py            human-readable
    python benchmarks/decoding.py --json     one JSON list, a row per K
"""
from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import (BartConfig, BartForConditionalGeneration, DPRConfig, DPRQuestionEncoder, RagConfig,
                          RagSequenceForGeneration, RagTokenForGeneration)

from ragedu.decoding import DecodeSettings, rag_sequence_decode, rag_token_decode
from ragedu.generator import Generator
from ragedu.tokenizer import train_tokenizer

V, B, NUM_BEAMS, MAX_LEN, L = 300, 16, 4, 20, 128
HF_SETTINGS = dict(forced_eos_token_id=None, forced_bos_token_id=None, min_length=0, no_repeat_ngram_size=0,
                   early_stopping=False)


def tiny_rag_pair(n_docs: int, seed: int = 0):
    """RagTokenForGeneration and RagSequenceForGeneration sharing one tiny random BART generator."""
    torch.manual_seed(seed)
    question_config = DPRConfig(vocab_size=V, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32)
    generator_config = BartConfig(vocab_size=V, d_model=32, encoder_layers=2, decoder_layers=2,
                                  encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                  decoder_ffn_dim=64, max_position_embeddings=128, init_std=0.3)
    config = RagConfig.from_question_encoder_generator_configs(question_config, generator_config, n_docs=n_docs)
    bart = BartForConditionalGeneration(generator_config)
    question_encoder = DPRQuestionEncoder(question_config)
    token = RagTokenForGeneration(config, question_encoder=question_encoder, generator=bart).eval()
    sequence = RagSequenceForGeneration(config, question_encoder=question_encoder, generator=bart).eval()
    return token, sequence


def inputs(K: int, seed: int = 0):
    """B questions × K unpadded contexts (B*K, L) and doc scores (B, K)."""
    g = torch.Generator().manual_seed(seed)
    context = torch.randint(3, V, (B * K, L), generator=g)
    return context, torch.ones_like(context), torch.randn(B, K, generator=g) * 3


def timed(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Each function's result and best wall time over `repeats` rounds. The functions take turns within a
    round, so a machine busy with other work slows them alike."""
    best, out = {name: float("inf") for name in fns}, {}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return out, best


def padded(ids: list[int], length: int, pad: int) -> list[int]:
    return ids + [pad] * (length - len(ids))


@torch.no_grad()
def measure(K: int, tokenizer, repeats: int) -> dict:
    hf_token, hf_sequence = tiny_rag_pair(K)
    cfg = hf_token.config.generator
    generator = Generator(hf_token.generator, tokenizer)
    context, mask, doc_scores = inputs(K)
    log_p_z = doc_scores.log_softmax(-1)                                   # (B, K)
    ids, ids_mask = context.view(B, K, L), mask.view(B, K, L)              # (B, K, L)

    out, seconds = timed({
        "hf_rag_token": lambda: hf_token.generate(
            context_input_ids=context, context_attention_mask=mask, doc_scores=doc_scores, n_docs=K,
            num_beams=NUM_BEAMS, num_return_sequences=NUM_BEAMS, max_length=MAX_LEN + 1, **HF_SETTINGS),
        "rag_token": lambda: rag_token_decode(generator, log_p_z, ids, ids_mask,
                                              DecodeSettings(num_beams=NUM_BEAMS, max_len=MAX_LEN,
                                                             num_return_sequences=NUM_BEAMS)),
        "hf_rag_sequence": lambda: hf_sequence.generate(
            context_input_ids=context, context_attention_mask=mask, doc_scores=doc_scores, n_docs=K,
            num_beams=NUM_BEAMS, max_new_tokens=MAX_LEN, do_deduplication=True, **HF_SETTINGS),
        "thorough": lambda: rag_sequence_decode(generator, log_p_z, ids, ids_mask,
                                                DecodeSettings(mode="thorough", num_beams=NUM_BEAMS,
                                                               max_len=MAX_LEN)),
        "fast": lambda: rag_sequence_decode(generator, log_p_z, ids, ids_mask,
                                            DecodeSettings(mode="fast", num_beams=NUM_BEAMS, max_len=MAX_LEN)),
    }, repeats)
    hf_tok, hf_seq = out["hf_rag_token"], out["hf_rag_sequence"]               # (B·N, 1 + T), (B, 1 + T)
    pad = cfg.pad_token_id
    identical = all(len(out["rag_token"].ids[b]) == NUM_BEAMS for b in range(B)) and all(
        padded(ours, hf_tok.shape[1] - 1, pad) == hf_tok[b * NUM_BEAMS + r, 1:].tolist()
        for b in range(B) for r, ours in enumerate(out["rag_token"].ids[b]))
    agrees = all(padded(out["thorough"].ids[b][0], hf_seq.shape[1] - 1, pad) == hf_seq[b, 1:].tolist()
                 for b in range(B))
    return {
        "k": K,
        "rag_token_time_ratio_vs_hf": round(seconds["rag_token"] / seconds["hf_rag_token"], 3),
        "rag_token_identical_to_hf": identical,
        "thorough_time_ratio_vs_hf": round(seconds["thorough"] / seconds["hf_rag_sequence"], 3),
        "thorough_best_agrees_with_hf": agrees,
        "fast_over_thorough_time_ratio": round(seconds["fast"] / seconds["thorough"], 3),
        "seconds": {name: round(t, 3) for name, t in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON list, a row per K")
    parser.add_argument("--repeats", type=int, default=5, help="timings are the best of this many rounds")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both libraries (default 1: on a shared CPU, several threads per "
                             "process spin against other work and the timings mean little)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer = train_tokenizer(["a tiny vocabulary"], vocab_size=V)
    rows = [measure(K, tokenizer, args.repeats) for K in (5, 20)]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"RAG decoding on tiny random weights: B={B} questions, beam {NUM_BEAMS}, max_len {MAX_LEN}, "
          f"{torch.get_num_threads()} thread(s), best of {args.repeats}; time ratios are ours / Hugging Face "
          "(goal ≤ 0.5)")
    for row in rows:
        s = row["seconds"]
        print(f"K={row['k']:>2}  RAG-Token   {s['rag_token']:.3f}s vs HF {s['hf_rag_token']:.3f}s  "
              f"ratio {row['rag_token_time_ratio_vs_hf']:.2f}  identical to HF: {row['rag_token_identical_to_hf']}")
        print(f"      thorough    {s['thorough']:.3f}s vs HF {s['hf_rag_sequence']:.3f}s  "
              f"ratio {row['thorough_time_ratio_vs_hf']:.2f}  best agrees with HF: "
              f"{row['thorough_best_agrees_with_hf']}")
        print(f"      fast        {s['fast']:.3f}s  fast / thorough {row['fast_over_thorough_time_ratio']:.2f}")


if __name__ == "__main__":
    main()
