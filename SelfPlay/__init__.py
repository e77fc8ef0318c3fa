"""Self-play: the 3-prompt generator (generator.py), the prompt-set generator behind
Tools/selfplay_generator.py (prompt_answers.py, prompt_set_cli.py) and the offline template teacher (teacher.py); the
self-improvement loop over them is claudesidian/self_improve.py. See docs/generate.md."""
