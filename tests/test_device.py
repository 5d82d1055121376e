"""Device placement without a GPU: every tensor ragedu builds follows the model's device.

Two stand-ins for a GPU on a CPU-only machine:
  - "meta", a second device: weights moved there and CPU inputs fail loudly when they meet
    ("Tensor on device cpu is not on the expected device meta"), as CPU and CUDA tensors do;
  - a watch on torch's tensor factories (torch.zeros, full, arange, tensor, …): a call from ragedu's own
    code that does not say `device=` would build a CPU tensor next to a GPU model.
"""
import copy
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.overrides import TorchFunctionMode

import ragedu
from ragedu.decoding import decode
from ragedu.generator import shift_right
from ragedu.retriever import embed

Q = ["Which country is Town 3 in?", "What is the population of Town 41?"]
A = ["Land 3", "2,517"]
RAGEDU_DIR = str(Path(ragedu.__file__).parent)
FACTORIES = {torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.tensor, torch.as_tensor,
             torch.rand, torch.randn, torch.randint, torch.eye, torch.linspace}

pytestmark = pytest.mark.usefixtures("one_thread")


class FactoryWatch(TorchFunctionMode):
    """Records every tensor factory called from ragedu's code without a device= argument."""

    def __init__(self):
        super().__init__()
        self.undevised = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        caller = sys._getframe(1).f_code
        if func in FACTORIES and "device" not in kwargs and caller.co_filename.startswith(RAGEDU_DIR):
            self.undevised.append(f"{Path(caller.co_filename).name}:{caller.co_name} torch.{func.__name__}")
        return func(*args, **kwargs)


def test_the_watch_sees_a_factory_without_device():
    """Guard against a test that cannot fail: the watch does flag an offending call."""
    from ragedu import generator

    with FactoryWatch() as watch:
        generator.flatten_passages(torch.zeros(1, 1, 1, device="cpu"))  # with device=: not flagged
        exec(compile("torch.zeros(2)", generator.__file__, "exec"), {"torch": torch})  # as if in ragedu's code
    assert watch.undevised == ["generator.py:<module> torch.zeros"]


def test_retrieval_scoring_decoding_and_traces_build_tensors_on_the_models_device(toy_rag):
    with torch.no_grad(), FactoryWatch() as watch:
        toy_rag.retriever.retrieve(Q, 5)
        toy_rag.score(Q, A, k=5)
        decode(toy_rag, Q, "token", k=3, num_beams=2, max_len=5, trace=True)
        decode(toy_rag, Q, "sequence", k=3, mode="thorough", num_beams=2, max_len=5, trace=True)
        decode(toy_rag, Q, "sequence", k=3, mode="fast", num_beams=2, max_len=5)
    assert watch.undevised == [], sorted(set(watch.undevised))


def test_the_closed_book_baseline_and_the_explorer_build_tensors_on_the_models_device(toy_rag):
    from ragedu.evaluate import closed_book_answers
    from ragedu.widgets import ExplorerState

    with torch.no_grad(), FactoryWatch() as watch:
        closed_book_answers(toy_rag.generator, Q, max_len=5)
        ExplorerState(toy_rag, k_max=3, max_len=5).view(Q[0], k=2, variant="sequence", num_beams=2)
    assert watch.undevised == [], sorted(set(watch.undevised))


class EncoderOn(torch.nn.Module):
    """An encoder whose weights are on `device` and which refuses inputs from elsewhere, as a GPU model does.
    (Hugging Face's BERT cannot run on 'meta': its masks read values.)"""

    def __init__(self, device, D=4):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(D, device=device))

    def forward(self, input_ids, attention_mask):
        assert input_ids.device == attention_mask.device == self.weight.device, "inputs left on another device"
        B, L = input_ids.shape
        h = self.weight.expand(B, L, -1)                                                 # (B, L, D)
        return SimpleNamespace(last_hidden_state=h, pooler_output=h[:, 0])


@pytest.mark.parametrize("pooling", ["mean", "dpr"])
def test_encoder_inputs_are_moved_to_the_encoders_device(toy_rag, pooling):
    batch = toy_rag.retriever.tokenizer(Q, padding=True, return_tensors="pt")          # CPU tensors
    q_x = embed(EncoderOn("meta"), batch.input_ids, batch.attention_mask, pooling)
    assert q_x.device.type == "meta" and q_x.shape == (2, 4)


def test_generator_on_another_device_builds_its_inputs_there(toy_rag):
    generator = copy.deepcopy(toy_rag.generator).to("meta")
    retrieved = toy_rag.retriever.retrieve(Q, 3)
    ids, mask = generator.context_inputs(retrieved.titles, retrieved.texts, Q)          # (B, K, L)
    y, y_mask = generator.targets(A)                                                    # (B, T)
    closed_ids, closed_mask = generator.question_inputs(Q)                              # (B, 1, L)
    decoder_input = shift_right(y, [2, 0])                                              # (B, 1 + T)
    assert {t.device.type for t in (ids, mask, y, y_mask, closed_ids, closed_mask, decoder_input)} == {"meta"}
    assert ids.shape[:2] == (2, 3) and decoder_input.shape == (2, 1 + y.shape[1])


def test_moving_a_rag_model_moves_weights_and_document_vectors_and_results_follow(toy_rag):
    model = copy.deepcopy(toy_rag).to(torch.device("cpu"))
    assert model.retriever.d_z.device == model.generator.device == torch.device("cpu")
    with torch.no_grad():
        scores = model.score(Q, A, k=3)
    for t in (scores.retrieved.rows, scores.log_p_z, scores.log_p_yi, scores.log_p_y_token, scores.y):
        assert t.device == model.generator.device
    moved = copy.deepcopy(toy_rag).to("meta")
    assert moved.retriever.d_z.device.type == "meta"  # the non-persistent buffer moves with the weights
    assert moved.generator.device.type == "meta"
