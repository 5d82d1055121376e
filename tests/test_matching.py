"""The exact-match feature: flags by brute force, rows without a question, and what the encoder reads."""
import torch

from ragedu.generator import Generator, GeneratorConfig, new_bart
from ragedu.matching import match_flags

TITLES = [["Town 3", "Town 5"]]
TEXTS = [["Town 3 is a city in Land 3.", "Town 5 is a city in Land 5. It has a population of 1,185. " * 20]]
QUESTIONS = ["Town 3 is a city in Land 5."]


def brute_force_flags(tokens: list[int], separator: list[int]) -> list[int]:
    """The flags of one unpadded row, from the definition: split at the last separator, then look up each token."""
    n = len(separator)
    starts = [j for j in range(len(tokens) - n + 1) if tokens[j:j + n] == separator]
    if not starts:
        return [0] * len(tokens)
    q = starts[-1] + n
    passage, question = tokens[1:starts[-1]], tokens[q:-1]
    return [0] + [int(t in question) for t in passage] + [0] * n + [int(t in passage) for t in question] + [0]


def test_flags_equal_the_definition_on_every_row(toy_rag):
    g = toy_rag.generator
    ids, mask = g.context_inputs(TITLES, TEXTS, QUESTIONS)
    flat_ids, flat_mask = ids.view(2, -1), mask.view(2, -1)
    flags = match_flags(flat_ids, flat_mask, g.separator_tokens)
    for r in range(2):
        n = int(flat_mask[r].sum())
        assert flags[r, :n].tolist() == brute_force_flags(flat_ids[r, :n].tolist(), g.separator_tokens)
        assert (flags[r, n:] == 0).all()
    assert flags[0].sum() > 5 and flags[1].sum() > 5  # the claim's words are found in the passages


def test_a_row_without_a_separator_has_no_flags(toy_rag):
    g = toy_rag.generator
    ids, mask = g.question_inputs(["Town 3 is a city in Land 3 in Land 3."])   # a question alone: closed book
    assert (match_flags(ids[:, 0], mask[:, 0], g.separator_tokens) == 0).all()


def test_the_flag_changes_what_the_encoder_reads_and_nothing_else_does(toy_tokenizer):
    tok = toy_tokenizer
    config = GeneratorConfig(len(tok), dim=32, layers=1, heads=2, match_feature=True)
    g = Generator(new_bart(config, tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, seed=1).eval(), tok)
    ids, mask = g.context_inputs(TITLES, TEXTS, ["Town 3 is a city in Land 3."])
    with torch.no_grad():
        h = g.encode(ids, mask).states
        plain = g.model.get_encoder()(input_ids=ids.view(2, -1), attention_mask=mask.view(2, -1)).last_hidden_state
        assert not torch.allclose(h.view(2, -1, 32), plain, atol=1e-4)
        g.match_embedding.weight.zero_()   # no nudge: the encoder reads the tokens alone
        torch.testing.assert_close(g.encode(ids, mask).states.view(2, -1, 32), plain)


def test_align_case_writes_question_words_as_the_passage_does():
    from ragedu.matching import align_case

    passage = "Austria / Austria is a country in Europe. Its capital is Vienna."
    assert align_case("vienna is austria's capital", passage) == "Vienna is Austria's capital"
    assert align_case("WHAT IS THE CAPITAL OF AUSTRIA", passage) == "WHAT is THE capital OF Austria"
    assert align_case("Who wrote Hamlet?", passage) == "Who wrote Hamlet?"   # nothing to align


def test_a_lowercased_question_reaches_the_generator_as_the_passage_writes_its_names():
    import ragedu

    generator = ragedu.load_default().generator
    titles, texts = [["Austria"]], [["Austria is a country in Europe. Its capital is Vienna."]]
    well, low = (generator.context_inputs(titles, texts, [q])[0] for q in ("Is Vienna in Austria?",
                                                                            "is vienna in austria?"))
    assert well[0, 0, -4:].tolist() == low[0, 0, -4:].tolist()   # "Vienna in Austria?" </s>: the same tokens
