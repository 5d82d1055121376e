"""The copy head (a pointer-generator): its mixture by hand, distributions that sum to 1, copying alone
reaching only the input's tokens, teacher forcing equal to step-by-step decoding, saving and loading."""
import pytest
import torch

from ragedu.generator import Generator, GeneratorConfig, new_bart
from ragedu.manifest import write_manifest
from ragedu.model import new_rag_model
from ragedu.pretrained import load, save
from ragedu.retriever import EncoderConfig

TITLES = [["Town 3", "Town 5"]]
TEXTS = [["Town 3 is a city in Land 3.", "Town 5 is a city in Land 5. It has a population of 1,185."]]
QUESTIONS = ["Which country is Town 3 in?"]


@pytest.fixture(scope="module")
def copying(toy_tokenizer):
    """A tiny random BART with a copy head, its pointer sharpened so that copying carries real weight."""
    tok = toy_tokenizer
    bart = new_bart(GeneratorConfig(len(tok), dim=32, layers=1, heads=2, copy_head=True), tok.pad_token_id,
                    tok.bos_token_id, tok.eos_token_id, seed=3).eval()
    with torch.no_grad():
        bart.copy_head.pointer.weight.mul_(5.0)
    return Generator(bart, tok)


def test_the_mixture_is_the_pointer_generator_formula_computed_by_hand(copying):
    g = copying
    ids, mask = g.context_inputs(TITLES, TEXTS, QUESTIONS)       # (1, 2, L)
    y, y_mask = g.targets(["Land 3"])
    with torch.no_grad():
        log_p_yi = g.log_p_yi(ids, mask, y, y_mask)[0]           # (K, T)
        head = g.copy_head
        for k in range(2):
            n = int(mask[0, k].sum())
            x = ids[0, k, :n]
            decoder_input = torch.cat([torch.tensor([g.start_id]), y[0, :-1]])
            out = g.model(input_ids=x[None], decoder_input_ids=decoder_input[None], output_hidden_states=True)
            h, s = out.encoder_last_hidden_state[0], out.decoder_hidden_states[-1][0]   # (n, D), (T, D)
            p_vocab = out.logits[0].softmax(-1)                                           # (T, V)
            for t in range(y.shape[1]):
                a = torch.softmax(torch.stack([head.pointer(s[t]) @ h[j] for j in range(n)]) / 32 ** 0.5, 0)
                gate = torch.sigmoid(head.gate(torch.cat([s[t], sum(a[j] * h[j] for j in range(n))])))[0]
                w = int(y[0, t])
                copied = sum(float(a[j]) for j in range(n) if int(x[j]) == w)
                expected = gate * p_vocab[t, w] + (1 - gate) * copied
                assert float(log_p_yi[k, t].exp()) == pytest.approx(float(expected), rel=1e-4)


def test_each_step_is_a_distribution_and_copying_alone_reaches_only_the_input(copying):
    g = copying
    ids, mask = g.context_inputs(TITLES, TEXTS, QUESTIONS)
    h = g.encode(ids, mask)[0]                                    # question 0: (K, L, D) states, their ids and mask
    start = torch.full((2, 1), g.start_id)
    with torch.no_grad():
        log_p, _ = g.next_token_log_probs(start, h)               # (K, V)
        torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(2))
        g.copy_head.gate.bias.fill_(-60.0)                        # the gate shut: every token is copied
        try:
            copied, _ = g.next_token_log_probs(start, h)
        finally:
            g.copy_head.gate.bias.fill_(0.0)
    for k in range(2):
        in_input = set(ids[0, k][mask[0, k] == 1].tolist())
        reachable = set(torch.nonzero(copied[k].exp() > 1e-6).view(-1).tolist())
        assert reachable <= in_input and len(reachable) > 3
        torch.testing.assert_close(copied[k].exp().sum(), torch.tensor(1.0))


def test_teacher_forcing_equals_decoding_step_by_step(copying):
    g = copying
    ids, mask = g.context_inputs(TITLES, TEXTS, QUESTIONS)
    y, y_mask = g.targets(["Land 3 Town"])
    with torch.no_grad():
        forced = g.log_p_yi(ids, mask, y, y_mask)[0]              # (K, T)
        h, cache, y_last = g.encode(ids, mask)[0], None, torch.full((2, 1), g.start_id)
        for t in range(y.shape[1]):
            log_p, cache = g.next_token_log_probs(y_last, h, cache)
            torch.testing.assert_close(log_p[:, y[0, t]], forced[:, t], atol=1e-5, rtol=1e-5)
            y_last = y[:, t:t + 1].expand(2, 1)


def test_a_copying_model_saves_and_loads_and_a_plain_config_refuses_its_weights(toy_corpus, toy_tokenizer, tmp_path):
    small = dict(vocab_size=len(toy_tokenizer), dim=32, layers=1, heads=2)
    model = new_rag_model(toy_corpus, toy_tokenizer, EncoderConfig(**small), GeneratorConfig(**small, copy_head=True),
                          progress=False).eval()
    path = save(model, tmp_path / "copying", EncoderConfig(**small), GeneratorConfig(**small, copy_head=True))
    again = load(path)
    assert again.generator.copy_head is not None
    scores, reloaded = model.score(QUESTIONS, ["Land 3"], k=3), again.score(QUESTIONS, ["Land 3"], k=3)
    torch.testing.assert_close(scores.log_p_yi, reloaded.log_p_yi)

    config = (path / "config.json").read_text().replace('"copy_head": true', '"copy_head": false')
    (path / "config.json").write_text(config)
    write_manifest(path)  # forged, so the weights' own check is reached
    with pytest.raises(ValueError, match="copy_head"):
        load(path)


def test_copy_weights_are_the_pointer_the_likelihood_uses(copying, toy_rag):
    g = copying
    ids, mask = g.context_inputs(TITLES, TEXTS, QUESTIONS)
    y, y_mask = g.targets(["Land 3"])
    a, copied = g.copy_weights(ids, mask, y)                          # (1, K, T, L), (1, K, T)
    torch.testing.assert_close(a.sum(-1), torch.ones(1, 2, y.shape[1]))
    assert (a[mask[:, :, None, :].expand_as(a) == 0] == 0).all()     # padding is never pointed at
    assert ((copied > 0) & (copied < 1)).all()
    with torch.no_grad():
        g.copy_head.gate.bias.fill_(-60.0)                            # every token copied: p(y_t) = Σ_{x_j = y_t} a_tj
        try:
            log_p_yi = g.log_p_yi(ids, mask, y, y_mask)
            a, copied = g.copy_weights(ids, mask, y)
        finally:
            g.copy_head.gate.bias.fill_(0.0)
    pointed = (a * (ids[:, :, None, :] == y[:, None, :, None])).sum(-1)   # (1, K, T)
    torch.testing.assert_close(log_p_yi.exp(), pointed)
    torch.testing.assert_close(copied, torch.ones_like(copied))
    with pytest.raises(ValueError, match="no copy head"):
        toy_rag.generator.copy_weights(ids, mask, y)
