"""LoRA SFT and KTO with MLX (Apple silicon; ``mlx[cpu]`` on Linux), behind Trainers/mistral_lora_mac/main.py.

config       dataclasses loaded from YAML (unknown keys are errors) and flag overrides; no mlx import
data         the shared data path (Trainers/shared/data.py) turned into MLX batches: SFT rows with
             assistant-only labels, KTO rows tokenised and KL-paired exactly as TRL does
lora         LoRA layers on every matching linear of the chosen blocks, and the reference switch
losses       masked next-token loss (SFT), sequence log-probs and the KTO loss as TRL computes it
checkpoints  checkpoint_step_N.npz adapters + optimizer state + step, best_checkpoint, resume
fuse         adapters merged into the base weights, saved as a Hugging Face model with lineage
trainer      the loop: gradient accumulation, evaluation, eval hooks, logging, eval-only
cli          the command line of main.py

mlx is imported only by lora, losses, checkpoints, fuse and trainer, so the rest of the toolkit
(and ``main.py --help``) never needs it.
"""
