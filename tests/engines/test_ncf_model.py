"""NCF's scoring pass (`forward_users`), on an untrained network: no app, no database."""

from __future__ import annotations

import torch

from recommender.engines.ncf.model import NCFModel, NCFShape


def test_users_over_their_own_services_equal_the_plain_forward_pass():
    torch.manual_seed(0)
    shape = NCFShape(users=5, services=12, user_content=6, service_content=7, mf_dim=4, mlp_dim=4)
    network = NCFModel(shape).eval()
    for parameter in network.parameters():  # away from the near-zero initial embeddings
        torch.nn.init.normal_(parameter, std=0.5)
    content = torch.randn(12, shape.service_content)
    parts = network.service_parts(content)
    users = torch.tensor([3, 0, 3])  # one unknown (0), one twice
    user_content = torch.randn(3, shape.user_content)
    history = torch.randn(3, shape.mf_dim)
    # rows per user, one unknown (0), one twice in a row, the same rows for two users
    services = torch.tensor([[0, 4, 7, 11, 4], [1, 2, 3, 4, 5], [0, 4, 7, 11, 4]])

    fast = network.forward_users(
        users, user_content, history, services, parts.take(services.reshape(-1))
    )

    assert fast.shape == services.shape
    with torch.inference_mode():
        for i in range(len(users)):
            full = network(
                users[i : i + 1],
                services[i],
                user_content[i : i + 1],
                content[services[i]],
                history[i : i + 1],
            )
            torch.testing.assert_close(fast[i], full, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(fast[0], fast[2])  # the same rows, another user: other logits
