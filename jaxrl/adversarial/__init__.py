"""Robust adversarial RL: QARL's bounded-rationality curriculum (Reddi et al. 2024) and its baselines (RARL,
Pinto et al. 2017; a fixed temperature; a linear schedule; no adversary).

teacher.py     the self-paced teacher over the adversary's temperature distribution (Gamma, fixed rate)
players.py     two SAC players on a two-player env, on the shared off-policy loop
methods.py     each method as (adversary kind, temperature context)
robustness.py  nominal, worst-case-adversary and held-out-physics returns of a trained protagonist
"""
