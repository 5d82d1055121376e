"""How big the paper's released models are: parameters, bytes and index sizes, counted from their configs.

    python benchmarks/real_sizes.py [--json] [--passages N]

Nothing is downloaded: the configs of facebook/rag-token-nq's parts (a DPR question encoder, which is
BERT-base, and BART-large) are written out here and the models are built on the "meta" device, which has
shapes but no memory. The byte counts are parameters × 4 (float32) or × 2 (float16); the index sizes are
N × 768 × 4 bytes of document vectors d(z), the floor of a flat index (HNSW adds its graph on top).
FLOP figures are the usual estimate, 2 × (non-embedding parameters) per token, not measurements.
"""
import argparse
import json

import torch
from transformers import BartConfig, BartForConditionalGeneration, DPRConfig, DPRContextEncoder, DPRQuestionEncoder

PAPER_PASSAGES = 21_015_324  # DPR's 100-word Wikipedia passages (psgs_w100), the paper's memory
D = 768                      # DPR's vector size d(z), q(x)

# facebook/bart-large, written out (BartConfig.from_pretrained would need the hub)
BART_LARGE = dict(vocab_size=50265, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                  decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096,
                  max_position_embeddings=1024, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                  decoder_start_token_id=2)
# BERT-base uncased inside DPR (facebook/dpr-question_encoder-single-nq-base, dpr-ctx_encoder-single-nq-base)
BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2, projection_dim=0)


def count(model: torch.nn.Module) -> dict:
    """Parameters (tied ones once), buffers, and the parameters outside the embedding tables."""
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for name, b in model.named_buffers() if "position_ids" not in name)
    tables = {id(m.weight): m.weight for m in model.modules() if isinstance(m, torch.nn.Embedding)}  # tied once
    embedding = sum(w.numel() for w in tables.values())
    return {"parameters": params, "buffers": buffers, "non_embedding_parameters": params - embedding}


def gb(n_bytes: float) -> float:
    return round(n_bytes / 1e9, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--passages", type=int, default=100_000, help="a memory of your own, for its index size")
    args = parser.parse_args()

    with torch.device("meta"):  # shapes only: no memory, no download
        parts = {
            "question_encoder (DPR, BERT-base)": DPRQuestionEncoder(DPRConfig(**BERT_BASE)),
            "generator (BART-large)": BartForConditionalGeneration(BartConfig(**BART_LARGE)),
            "context_encoder (DPR, BERT-base; encodes passages, not in the RAG checkpoint)":
                DPRContextEncoder(DPRConfig(**BERT_BASE)),
        }
    sizes = {name: count(model) for name, model in parts.items()}
    q, g, c = sizes.values()
    rag = q["parameters"] + g["parameters"]
    figures = {
        "command": "python benchmarks/real_sizes.py --json",
        "parts": sizes,
        "rag_checkpoint_parameters": rag,
        "rag_checkpoint_float32_gb": gb(4 * (rag + q["buffers"] + g["buffers"])),
        "rag_checkpoint_float16_gb": gb(2 * (rag + q["buffers"] + g["buffers"])),
        "context_encoder_float32_gb": gb(4 * (c["parameters"] + c["buffers"])),
        "paper_passages": PAPER_PASSAGES,
        "paper_index_vectors_float32_gb": gb(PAPER_PASSAGES * D * 4),
        "your_passages": args.passages,
        "your_index_vectors_float32_gb": gb(args.passages * D * 4),
        # 2 FLOPs per multiply-add, per non-embedding parameter, per token (attention left out)
        "estimated_gflop_per_passage_of_150_tokens": round(2 * c["non_embedding_parameters"] * 150 / 1e9, 1),
        "estimated_gflop_per_question_bart_encoder_k5_300_tokens": round(
            2 * count(parts["generator (BART-large)"].model.encoder)["non_embedding_parameters"] * 5 * 300 / 1e9, 1),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:58s} {value}")


if __name__ == "__main__":
    main()
