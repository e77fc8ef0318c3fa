"""The live monitor inside a transformers Trainer (SFT and KTO): every eval_steps optimizer steps,
greedy generation from the model being trained, then memory released before training goes on."""

from __future__ import annotations

import gc

from transformers import TrainerCallback

from ..config import RunConfig
from .generator import Example
from .monitor import LiveMonitor, make_monitor


def hf_generate(model, tokenizer, max_tokens: int):
    """generate(messages) -> text for a transformers / PEFT model: the prompt rendered and
    tokenised exactly as training renders it, greedy decoding, special markers such as
    <tool_call> kept (only end and padding tokens are removed)."""
    import torch

    from ..data import render_prompt

    def generate(messages: list[dict]) -> str:
        encoded = tokenizer(render_prompt(tokenizer, messages), return_tensors="pt", add_special_tokens=True)
        encoded = {k: v.to(model.device) for k, v in encoded.items()}
        with torch.no_grad():
            output = model.generate(
                **encoded,
                max_new_tokens=max_tokens,
                do_sample=False,
                use_cache=True,
                pad_token_id=tokenizer.pad_token_id,
            )
        text = tokenizer.decode(output[0][encoded["input_ids"].shape[1] :], skip_special_tokens=False)
        for token in {tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token} - {None}:
            text = text.replace(token, "")
        return text.strip()

    return generate


def release_memory() -> None:
    """What generation cached (KV tensors, allocator blocks) goes back before the next training step:
    without it the first evaluation can push a GPU that fits training out of memory."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()


class SelfCorrectionCallback(TrainerCallback):
    def __init__(self, monitor: LiveMonitor, tokenizer, eval_steps: int, max_tokens: int, log=None):
        self.monitor, self.tokenizer, self.eval_steps, self.max_tokens, self.log = (
            monitor,
            tokenizer,
            eval_steps,
            max_tokens,
            log,
        )

    def on_step_end(self, args, state, control, model=None, **kwargs):
        # rank 0 only: the other ranks wait for it at the next gradient synchronisation
        if not state.is_world_process_zero or state.global_step % self.eval_steps:
            return
        was_training = model.training
        model.eval()
        try:
            report = self.monitor.evaluate(state.global_step, hf_generate(model, self.tokenizer, self.max_tokens))
        finally:
            if was_training:
                model.train()
            release_memory()
        if self.log is not None:
            self.log.write({"step": state.global_step, "live_eval": report.summary()})

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.monitor.finish(state.global_step)


def make_callback(config: RunConfig, examples: list[Example], tokenizer, log=None) -> SelfCorrectionCallback:
    """The callback run_training adds when monitor.eval_steps > 0."""
    m = config.monitor
    monitor = make_monitor(config.method, examples, m.num_eval_samples, config.self_correction, config.training.seed)
    return SelfCorrectionCallback(monitor, tokenizer, m.eval_steps, m.eval_max_tokens, log)
