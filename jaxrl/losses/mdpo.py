"""On-policy Mirror Descent Policy Optimization (Tomar et al. 2020): small pure functions.

Each iteration approximately solves the mirror-descent step

    pi_{k+1} = argmax_pi  E_{s,a ~ pi_k}[ pi(a|s) / pi_k(a|s) * A^{pi_k}(s, a) ] - (1 / t_k) E_s[ KL(pi(.|s) || pi_k(.|s)) ]

with several gradient steps on the same rollout and no ratio clipping: the
KL term keeps the new policy close to the behaviour policy ``pi_k``. The step
size ``t_k`` is annealed over training, ``t_k = 1 - k / K`` (Section 4 of the
paper), so the KL coefficient ``1 / t_k`` grows from 1 to ``K`` and later
iterations move the policy less.
"""
from __future__ import annotations

import jax.numpy as jnp


def mdpo_step_size(progress):
    """``t_k = 1 - k / K`` for ``progress = k / K`` in ``[0, 1)``: from 1 down to ``1 / K``.

    The official implementation evaluates the same line one iteration earlier
    (``1 - (k - 1) / K``); the paper's ``1 - k / K`` is used here. It never
    reaches 0 because ``k < K``.
    """
    return 1.0 - progress


def mdpo_loss(log_ratio, advantages, kl, kl_coef, progress):
    """MDPO policy loss ``-mean(r A) + (kl_coef / t_k) * mean(KL(pi || pi_k))`` to minimise.

    Args:
        log_ratio: ``[N]`` log pi(a|s) - log pi_k(a|s) of the sampled actions.
        advantages: ``[N]``.
        kl: ``[N]`` KL(pi(.|s) || pi_k(.|s)), the new policy first (the paper's
            direction for on-policy MDPO).
        kl_coef: scalar multiplying the paper's coefficient ``1 / t_k`` (1 is the paper).
        progress: scalar ``k / K``, fraction of training done.
    """
    surrogate = jnp.mean(jnp.exp(log_ratio) * advantages)
    return -surrogate + kl_coef / mdpo_step_size(progress) * jnp.mean(kl)
