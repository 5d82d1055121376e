"""Small library helpers the course notebooks call (choosing examples by a computed criterion)."""
import torch

from ragedu.marginalize import tokens_leaning_elsewhere


def test_tokens_leaning_elsewhere_counts_real_tokens_whose_posterior_leaves_the_first_passage():
    log_p_z = torch.tensor([[0.8, 0.2], [0.3, 0.7]]).log()                 # (B, K) first choice: z0, then z1
    p_yi = torch.tensor([[[0.9, 0.01, 0.5], [0.1, 0.99, 0.5]],              # token 1 only z1 explains
                         [[0.9, 0.9, 1.0], [0.01, 0.01, 1.0]]])             # tokens 0, 1 lean on z0
    y_mask = torch.tensor([[1, 1, 1], [1, 1, 0]])                           # the second y has 2 real tokens
    assert tokens_leaning_elsewhere(log_p_z, p_yi.log(), y_mask).tolist() == [1, 2]
    # a padded position carries log-prob 0 under every z, so it keeps the prior; masked or not, it never counts
    assert tokens_leaning_elsewhere(log_p_z, p_yi.log(), torch.ones(2, 3, dtype=torch.long)).tolist() == [1, 2]
