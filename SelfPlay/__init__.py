"""Self-play: the 3-prompt generator (generator.py), the prompt-set generator behind
Tools/selfplay_generator.py (prompt_answers.py), the offline template teacher (teacher.py) and the
self-improvement loop (self_improve.py). See docs/generate.md."""
