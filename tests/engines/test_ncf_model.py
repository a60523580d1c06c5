"""NCF's one-user scoring path, on an untrained network: no app, no database."""

from __future__ import annotations

import torch

from recommender.engines.ncf.model import NCFModel, NCFShape


def test_one_user_over_many_services_equals_the_plain_forward_pass():
    torch.manual_seed(0)
    shape = NCFShape(users=5, services=12, user_content=6, service_content=7, mf_dim=4, mlp_dim=4)
    network = NCFModel(shape).eval()
    for parameter in network.parameters():  # away from the near-zero initial embeddings
        torch.nn.init.normal_(parameter, std=0.5)
    content = torch.randn(12, shape.service_content)
    parts = network.service_parts(content)
    user, user_content = torch.tensor([3]), torch.randn(1, shape.user_content)
    history = torch.randn(1, shape.mf_dim)
    services = torch.tensor([0, 4, 7, 11, 4])  # rows, one unknown (0), one twice
    chosen = parts.take(services)

    fast = network.forward_one_user(user, user_content, history, services, chosen)
    with torch.inference_mode():
        full = network(user, services, user_content, content[services], history)

    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
