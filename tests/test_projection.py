"""ragedu.projection: PCA by an SVD, and the picture of q(x) and d(z) before and after fine-tuning."""
import torch

from ragedu.projection import principal_plane, project, vector_picture


def test_the_plane_is_the_two_directions_of_largest_variance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g) * torch.tensor([5.0, 0.1, 3.0, 0.1, 0.1, 0.1])   # variance in dims 0 and 2
    mean, plane = principal_plane(x)
    assert plane.shape == (6, 2) and torch.allclose(plane.T @ plane, torch.eye(2), atol=1e-5)   # orthonormal
    assert set(plane.abs().argmax(0).tolist()) == {0, 2}
    assert torch.allclose(project(x, mean, plane).mean(0), torch.zeros(2), atol=1e-4)             # centred


def test_a_vector_in_the_plane_projects_to_its_coordinates():
    x = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [0, 2.0, 0], [0, -2.0, 0]])
    mean, plane = principal_plane(x)
    assert torch.allclose(project(torch.tensor([[0.0, 2.0, 0.0]]), mean, plane).norm(), torch.tensor(2.0))


def test_the_picture_holds_every_gold_passage_and_both_query_vectors(toy_rag):
    questions = ["Which country is Town 3 in?", "What is the population of Town 8?"]
    rows = [toy_rag.retriever.corpus.row("town-3"), toy_rag.retriever.corpus.row("town-8")]
    pic = vector_picture(toy_rag.retriever, toy_rag.retriever, questions, rows, neighbours=2)
    assert pic.q_before.shape == pic.q_after.shape == (2, 2) and pic.d_z.shape == (len(pic.titles), 2)
    assert [pic.titles[i] for i in pic.gold] == ["Town 3", "Town 8"]
    assert torch.allclose(pic.q_before, pic.q_after) and 0 < pic.explained <= 1 + 1e-6
