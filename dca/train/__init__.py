"""Training the reasoning adapter: traces, rewards (and, next, SFT, RL and GGUF export).

Inference code never imports this package.
"""
