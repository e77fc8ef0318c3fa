"""KTO-S (--use-kto-s): the loss math against TRL's KTO, and a real KTO-S run on the tiny model."""

import json

import pytest
import torch

from Trainers.shared.config import load_config
from Trainers.shared.kto_s import kto_s_losses
from Trainers.shared.train import run_training

BETA = 0.3


def _trl_kto(chosen, rejected, kl):  # TRL 1.16's loss_type="kto" (eqn 7 of the KTO paper)
    return 1 - torch.sigmoid(BETA * (chosen - kl)), 1 - torch.sigmoid(BETA * (kl - rejected))


def test_without_drift_kto_s_is_kto():
    chosen, rejected = torch.tensor([-2.0, 0.0, 1.5]), torch.tensor([-1.0, 0.5, 3.0])
    for got, want in zip(kto_s_losses(chosen, rejected, torch.tensor(0.0), BETA), _trl_kto(chosen, rejected, 0.0)):
        assert torch.allclose(got, want)


def test_the_kl_reference_point_acts_with_the_sign_of_each_utility():
    kl = torch.tensor(2.0)
    chosen, rejected = torch.tensor([1.0, -1.0]), torch.tensor([1.0, -1.0])
    s_chosen, s_rejected = kto_s_losses(chosen, rejected, kl, BETA)
    k_chosen, k_rejected = _trl_kto(chosen, rejected, kl)
    # a desirable completion the policy already prefers (r > 0): KTO-S moves it away from the boundary
    assert s_chosen[0] < k_chosen[0]
    # a desirable one it disprefers (r < 0): the same as KTO, z counts against it
    assert torch.isclose(s_chosen[1], k_chosen[1])
    # an undesirable completion the policy prefers (r > 0): KTO lets a large z hide it, KTO-S does not
    assert s_rejected[0] > k_rejected[0] and k_rejected[0] < 0.5 < s_rejected[0]
    assert torch.isclose(s_rejected[1], 1 - torch.sigmoid(BETA * (1.0 + kl)))


def test_a_drifting_policy_gets_smaller_updates_under_kto_s():
    """d loss / d r shrinks as z grows under KTO-S; under KTO the rejected-side gradient grows with z."""

    def grad(fn, r, kl, side):
        r = torch.tensor([r], requires_grad=True)
        other = torch.tensor([0.0])
        losses = fn(r, other, torch.tensor(kl)) if side == "chosen" else fn(other, r, torch.tensor(kl))
        (losses[0] if side == "chosen" else losses[1]).sum().backward()
        return abs(r.grad.item())

    kto_s = lambda c, r, kl: kto_s_losses(c, r, kl, BETA)  # noqa: E731
    for side in ("chosen", "rejected"):
        assert grad(kto_s, 0.5, 4.0, side) < grad(kto_s, 0.5, 0.0, side)
    assert grad(_trl_kto, 0.5, 1.0, "rejected") > grad(_trl_kto, 0.5, 0.0, "rejected")


def test_use_kto_s_trains_and_logs_the_kto_metrics(tiny_model_dir, tiny_kto_file, tmp_path, run):
    flags = {
        "model_name": tiny_model_dir,
        "local_file": tiny_kto_file,
        "output_dir": str(tmp_path / "out"),
        "batch_size": 2,
        "gradient_accumulation": 1,
        "max_steps": 8,
        "learning_rate": 5e-3,
        "use_kto_s": True,
    }
    result = run_training(load_config("kto", None, flags))
    log = (result.run_dir / "logs" / "training_latest.jsonl").read_text().splitlines()
    rows = [r for r in map(json.loads, log) if "rewards/margins" in r]
    assert len(rows) == 8 and all(key in rows[0] for key in ("rewards/chosen", "rewards/rejected", "kl", "loss"))
    assert rows[0]["loss"] == pytest.approx(0.5, abs=1e-3)  # a fresh adapter: policy == reference, r = z = 0
    assert rows[-1]["rewards/margins"] > rows[0]["rewards/margins"] + 0.05
    effective = (result.final_dir / "effective_config.yaml").read_text()
    assert "use_kto_s: true" in effective
    # the flag reaches the config from the command line, and only the KTO entry point has it
    done = run(
        "Trainers/rtx3090_kto/train_kto.py",
        "--model-name",
        tiny_model_dir,
        "--local-file",
        tiny_kto_file,
        "--use-kto-s",
        "--dry-run",
        "--output-dir",
        str(tmp_path / "dry"),
    )
    assert done.returncode == 0 and "use_kto_s: true" in done.stdout, done.stderr
    refused = run("Trainers/rtx3090_sft/train_sft.py", "--use-kto-s")
    assert refused.returncode == 2 and "--use-kto-s" in refused.stderr
