"""ragedu.collapse: the two monitors of retrieval collapse, by brute force, and a short stage-3 run."""
import math

import torch

from ragedu.collapse import monitor, retrieval_counts, retrieval_entropy, short_rag_run
from ragedu.tasks import Example


def test_entropy_is_log_k_for_a_uniform_posterior_and_zero_for_one_passage():
    log_p_z = torch.tensor([[0.25] * 4, [1.0, 0.0, 0.0, 0.0]]).log()
    assert torch.allclose(retrieval_entropy(log_p_z), torch.tensor([math.log(4), 0.0]))


def test_entropy_equals_a_loop_over_passages():
    log_p_z = torch.randn(3, 5).log_softmax(-1)
    loops = [-sum(p * math.log(p) for p in row) for row in log_p_z.exp().tolist()]
    assert torch.allclose(retrieval_entropy(log_p_z), torch.tensor(loops), atol=1e-6)


def test_counts_say_how_many_questions_retrieve_each_passage():
    rows = torch.tensor([[0, 2], [2, 3], [2, 0]])
    assert retrieval_counts(rows, 5).tolist() == [2, 0, 3, 1, 0]


def test_monitor_and_a_short_run_on_the_toy_model(toy_rag, one_thread):
    questions = [f"Which country is Town {i} in?" for i in range(12)]
    m = monitor(toy_rag.retriever, questions, 3)
    assert int(m.counts.sum()) == 12 * 3 and m.distinct == int((m.counts > 0).sum())
    assert 0 <= m.entropy <= math.log(3) + 1e-6 and 0 < m.top_share <= 1
    examples = {"qa": [Example(f"qa-{i}", "qa", "city_country", q, f"Land {i % 7}", f"L{i % 7}", (f"town-{i}",),
                               {"city_country": f"Land {i % 7}"})
                       for i, q in enumerate(questions)]}
    before = {n: p.clone() for n, p in toy_rag.retriever.query_encoder.state_dict().items()}
    run = short_rag_run(toy_rag, examples, questions, steps=3, every=2, batch=2)
    assert run.steps == [0, 2, 3] and len(run.monitors) == 3 and len(run.losses) == 3
    assert all(math.isfinite(loss) for loss in run.losses)
    after = toy_rag.retriever.query_encoder.state_dict()
    assert all(torch.equal(before[n], after[n]) for n in before)          # it trained a copy
