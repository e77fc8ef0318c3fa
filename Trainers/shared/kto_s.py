"""KTO-S: KTO with a sign-corrected KL reference point (``--use-kto-s``).

Standard KTO (TRL, eqn 7 of the KTO paper) scores each completion against the batch KL estimate z:
desirable ``1 - sigmoid(beta * (r - z))``, undesirable ``1 - sigmoid(beta * (z - r))``, where r is the
policy/reference log-ratio. When z grows (the policy drifts), that pulls every argument towards the
wrong side, so the examples that drifted most get the largest updates and KL can run away early in
training, most of all from a base model. KTO-S lets z act in the direction of each example's current
utility u (u = r for desirable, -r for undesirable):

    loss = 1 - sigmoid(beta * (u + sign(u) * z))

With z = 0 it equals KTO. As z grows, arguments move away from 0 and the sigmoid saturates, so a
drifting policy gets smaller updates instead of larger ones. TRL computes its loss inline, so the
trainer below re-implements ``_compute_loss`` on TRL's own helpers (KL log-probs, reference adapter)
and logs the same metrics (kl, rewards/chosen, rewards/rejected, rewards/margins, logps/*).
"""

from __future__ import annotations


def kto_s_losses(chosen_logratios, rejected_logratios, kl, beta: float):
    """Per-example KTO-S losses for the desirable and the undesirable completions of a batch."""
    import torch

    def loss(utility):
        return 1 - torch.sigmoid(beta * (utility + torch.sign(utility.detach()) * kl))

    return loss(chosen_logratios), loss(-rejected_logratios)


def kto_s_trainer(base):
    """A subclass of TRL's KTOTrainer (or of a subclass of it) whose loss is KTO-S."""
    import torch
    from trl.trainer import kto_trainer as trl_kto

    class KtoSTrainer(base):
        def _sequence_logps(self, model, kwargs, labels):
            out = model(**kwargs, labels=labels, fused_lm_head=True)
            return out.log_probs[:, -(labels.size(1) - 1) :].sum(-1)

        def _compute_loss(self, model, inputs, return_outputs):
            if self.loss_type != "kto" or self.precompute_ref_logps or return_outputs:
                raise ValueError("--use-kto-s supports loss_type 'kto' without precomputed reference log-probs")
            mode = "train" if self.model.training else "eval"
            batch = {
                k: (v.to(self.accelerator.device) if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()
            }
            skip = {
                "completion_mask",
                "KL_input_ids",
                "KL_attention_mask",
                "KL_completion_mask",
                "label",
                "ref_logps",
                "ref_KL_logps",
            }
            kwargs = {k: v for k, v in batch.items() if k not in skip} | {"use_cache": False}
            labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
            policy_kl = self._compute_kl_logps(model, batch)
            policy = self._sequence_logps(model, kwargs, labels)
            with torch.no_grad():
                if trl_kto.is_peft_model(self.model) and self.ref_model is None:
                    unwrapped = self.accelerator.unwrap_model(self.model)
                    with trl_kto.use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None):
                        ref_kl = self._compute_kl_logps(self.model, batch)
                        ref = self._sequence_logps(self.model, kwargs, labels)
                else:
                    ref_kl = self._compute_kl_logps(self.ref_model, batch)
                    ref = self._sequence_logps(self.ref_model, kwargs, labels)
            kl = self.accelerator.gather_for_metrics((policy_kl - ref_kl).mean().detach()).mean().clamp(min=0)
            chosen = torch.as_tensor(batch["label"], dtype=torch.bool, device=policy.device)
            logratios = policy - ref
            chosen_losses, rejected_losses = kto_s_losses(logratios[chosen], logratios[~chosen], kl, self.beta)
            losses = torch.cat((self.desirable_weight * chosen_losses, self.undesirable_weight * rejected_losses))
            self._log_kto_metrics(mode, kl, policy, logratios, chosen)
            return losses.nanmean()

        def _log_kto_metrics(self, mode, kl, policy, logratios, chosen):
            metrics, gather = self._metrics[mode], self.accelerator.gather_for_metrics
            metrics["kl"].append(kl.item())
            counts = {}
            for name, mask in (("chosen", chosen), ("rejected", ~chosen)):
                counts[name] = gather(mask.sum()).sum().item()
                if counts[name]:
                    metrics[f"rewards/{name}"].append(
                        gather((self.beta * logratios.detach()[mask]).sum()).sum().item() / counts[name]
                    )
                    metrics[f"logps/{name}"].append(gather(policy.detach()[mask].sum()).sum().item() / counts[name])
            if counts["chosen"] and counts["rejected"]:
                metrics["rewards/margins"].append(metrics["rewards/chosen"][-1] - metrics["rewards/rejected"][-1])

    return KtoSTrainer
