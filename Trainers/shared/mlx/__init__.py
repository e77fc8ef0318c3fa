"""LoRA SFT, KTO and DPO with MLX (Apple silicon; ``mlx[cpu]`` on Linux), behind Trainers/mistral_lora_mac/main.py.

config       dataclasses in the NVIDIA trainers' vocabulary, loaded by their loader; no mlx import
data         validation split, batch order and the tokenising / padding helpers the methods' MLX rows
             and batches use (Trainers/shared/methods: SFT, KTO, DPO, each as TRL tokenises it)
lora         LoRA layers on every matching linear of the chosen blocks, and the reference switch
losses       token and sequence log-probs (each method's loss is in Trainers/shared/methods)
checkpoints  checkpoint_step_N.npz adapters + optimizer state + step, best_checkpoint, resume
fuse         adapters merged into the base weights, saved as a Hugging Face model with lineage
trainer      the loop: gradient accumulation, evaluation, eval hooks, logging, eval-only
cli          the command line of main.py

mlx is imported only by lora, losses, checkpoints, fuse, trainer and the methods' MLX functions, so the rest of the toolkit
(and ``main.py --help``) never needs it.
"""
