"""The corpus-trained vocabularies: a cased one for the generator, an uncased one for the retriever.   (notebook 2)

A byte-level BPE (as BART's own tokenizer) trained on our corpus, with a few thousand tokens instead of
BART's 50k: a small vocabulary trains a small model several times faster. Two choices make copying easy:
  - every text starts with a space (add_prefix_space), so "Nairobi" is the same token sequence at the
    start of an answer as in the middle of a passage;
  - digits are split one by one, so a population is copied digit by digit rather than memorised.
Decoding is exact: decode(encode(s)) == s up to the leading space.

The retriever reads through its own *uncased* vocabulary (lowercase=True: a normaliser folds case and accents
before tokenizing), as DPR's encoders are uncased BERT while BART's BPE is cased: "what's the capital of austria"
and "What's the capital of Austria?" then reach the query encoder as the same tokens up to the final mark, while the
generator still reads and writes "Vienna" with its capital V.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from ragedu.errors import RagEduFileNotFound

PAD, BOS, EOS, UNK, MASK = "<pad>", "<s>", "</s>", "<unk>", "<mask>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, MASK]  # ids 0..4, in this order


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4000, lowercase: bool = False) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; encode() wraps a text as `<s> … </s>`.
    lowercase: fold case and strip accents before anything else ('São Tomé' -> 'sao tome'), as uncased BERT does."""
    bpe = Tokenizer(models.BPE(unk_token=UNK))
    if lowercase:
        bpe.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.ByteLevel(add_prefix_space=True), pre_tokenizers.Digits(individual_digits=True)]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        pair=f"{BOS} $A {EOS} $B {EOS}",
        special_tokens=[(BOS, bpe.token_to_id(BOS)), (EOS, bpe.token_to_id(EOS))],
    )
    return wrap(bpe)


def wrap(bpe: Tokenizer) -> PreTrainedTokenizerFast:
    """Give a `tokenizers.Tokenizer` the Hugging Face interface the models expect."""
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK, mask_token=MASK,
        clean_up_tokenization_spaces=False,
    )


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Read a tokenizer.json written by `save_tokenizer`."""
    path = Path(path)
    if not path.exists():
        raise RagEduFileNotFound(f"tokenizer file {path} does not exist")
    return wrap(Tokenizer.from_file(str(path)))


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, path: str | Path) -> None:
    tokenizer.backend_tokenizer.save(str(path))
