"""Meta-training an LPG update rule over a curriculum of grid worlds (LPG, TA-LPG, GROOVE), by evolution
or by meta-gradients.

One generation (one compiled update of the shared loop) draws levels from the
curriculum (:mod:`jaxrl.envs.levels.gridworld`): fresh random ones (``dr``), LPG's
five hand-designed ones (``hand_designed``), or a PLR buffer's replayed or new
levels scored by algorithmic regret (``groove``), positive value loss
(``plr_pvl``) or MaxMC (``plr_maxmc``). Then, with ``--meta-method``:

``es`` (GROOVE, TA-LPG): ``P`` candidate rules in ``P / 2`` antithetic pairs; both
members of pair ``i`` train an agent on level ``i`` from the same initial agent
and environment state for the level's lifetime and are evaluated on it (the
pair differs only by its rule); fitness is rank-based within each pair (winner
+1/2, loser -1/2, a tie 0), so levels of any reward scale weigh the same;
OpenAI-ES steps its mean.

``meta_gradient`` (LPG): ``P`` agents, one per level, live a lifetime; every
``K`` updates the regularised policy-gradient objective of each agent's next
rollout (advantages from a value critic the agent keeps beside it, unseen by
the rule) is differentiated through those ``K`` updates into the rule, and
Adam steps it.

Algorithmic regret (GROOVE) of a level is the return of a tuned baseline agent
(PPO) trained on it for the same lifetime minus the return of the agents the
current rule trained there. The baseline's return depends only on the level, so
it is computed once, when a level is new, and kept in the buffer beside it
(the GROOVE reference retrains a baseline for every level at every step; its own
notes call that very inefficient). Positive value loss is PLR's mean
``max(GAE, 0)`` of an agent's last rollout under its value critic; MaxMC here is
``best return ever seen on the level - return of the rule's agents`` (an LPG
agent has no value function of its own; its return stands in for ``V(s_0)``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import flatten_util

from jaxrl.agents.base import Agent
from jaxrl.agents.lpg import LPGAgentConfig, UpdateRule, lpg_hparams, make_lpg_agent, make_policy_gradient_objective
from jaxrl.config import option
from jaxrl.curricula.curriculum import REPLAY, CurriculumConfig, CurriculumHParams, LevelScores, make_curriculum
from jaxrl.envs.core import select_tree
from jaxrl.envs.levels.gridworld import GridWorld, generate_level, hand_designed_levels
from jaxrl.evolution.strategies import EvolutionHParams, make_strategy

LEVEL_CURRICULA = ("groove", "dr", "hand_designed", "plr_pvl", "plr_maxmc")
BUFFER_CURRICULA = ("groove", "plr_pvl", "plr_maxmc")
META_METHODS = ("es", "meta_gradient")
HELD_OUT_SEED = 20_230  # held-out levels are drawn from this key, never from a run's


@dataclasses.dataclass(frozen=True)
class GridLevelsConfig:
    """The grid-world level space and its curriculum (static but for the PLR options, traced)."""

    curriculum: str = option("groove", "how meta-training levels are chosen", choices=LEVEL_CURRICULA)
    grid_size: int = option(13, "board side every level fits in (LPG's hand-designed levels need 13)", minimum=3)
    max_objects: int = option(5, "object slots per level (LPG's levels need 5)", minimum=1)
    max_episode_steps: int = option(750, "cap on a level's episode length (evaluation scans this many steps)", minimum=1)
    lifetime_min: int = option(250, "shortest agent lifetime drawn with a level, in agent updates", minimum=1)
    lifetime_max: int = option(250, "longest lifetime (log-uniform between; equal: fixed)", minimum=1)
    num_walls: int = option(15, "walls drawn by the level generator", minimum=0)
    held_out_levels: int = option(8, "held-out random levels the search mean is evaluated on", minimum=1)
    capacity: int = option(1000, "PLR level buffer capacity (groove, plr_pvl, plr_maxmc)", minimum=1)
    replay_prob: float = option(0.5, "probability that a generation replays buffer levels", traced=True,
                                minimum=0.0, maximum=1.0)
    min_fill: float = option(0.0, "buffer fraction filled before replaying", traced=True, minimum=0.0, maximum=1.0)
    temperature: float = option(1.0, "rank prioritisation temperature", traced=True, minimum=1e-6)
    staleness_coef: float = option(0.1, "staleness weight in the replay mix", traced=True, minimum=0.0, maximum=1.0)
    baseline_lr: float = option(2.5e-4, "learning rate of the PPO baseline of algorithmic regret", positive=True)


@dataclasses.dataclass(frozen=True)
class RuleSearchConfig:
    """How an update rule is meta-trained: evolution (GROOVE, TA-LPG) or meta-gradients (LPG), and the
    meta-gradient's regularisers (the LPG paper's; defaults of the GROOVE reference)."""

    meta_method: str = option("es", "es: antithetic OpenAI-ES on rank fitness (--sigma, --lr); meta_gradient: Adam "
                                    "(--lr) on the gradient through --inner-updates agent updates", choices=META_METHODS)
    inner_updates: int = option(5, "meta_gradient: agent updates differentiated through per meta-gradient step (K)",
                                minimum=1)
    policy_entropy_coef: float = option(5e-2, "meta_gradient: weight of the updated policy's entropy (bonus)", minimum=0.0)
    target_entropy_coef: float = option(1e-3, "meta_gradient: weight of the prediction y's entropy (bonus)", minimum=0.0)
    policy_l2_coef: float = option(5e-3, "meta_gradient: weight of the penalty mean(pi_hat^2)", minimum=0.0)
    target_l2_coef: float = option(1e-3, "meta_gradient: weight of the penalty mean(|y_hat|^2)", minimum=0.0)
    meta_grad_norm: float = option(0.5, "meta_gradient: global-norm clip of the rule's gradient", positive=True)


class LPGMetaHParams(NamedTuple):
    """Traced settings of a meta-training run: the outer search's step sizes and the curriculum's."""

    evolution: EvolutionHParams
    curriculum: CurriculumHParams


class LPGMetaState(NamedTuple):
    strategy: Any
    params: Any  # rule parameters of the search mean
    curriculum: Any


def curriculum_config(levels: GridLevelsConfig, num_levels: int) -> CurriculumConfig:
    """The PLR buffer behind ``groove`` / ``plr_pvl`` / ``plr_maxmc`` (new and replayed levels are both trained on, as in GROOVE)."""
    return CurriculumConfig(method="plr", num_levels=num_levels, capacity=max(levels.capacity, num_levels),
                            replay_prob=levels.replay_prob, min_fill=levels.min_fill, prioritization="rank",
                            temperature=levels.temperature, staleness_coef=levels.staleness_coef)


def lpg_meta_hparams(search, levels: GridLevelsConfig) -> LPGMetaHParams:
    f = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    return LPGMetaHParams(EvolutionHParams(f(search.sigma), f(search.lr)),
                          CurriculumHParams(f(levels.replay_prob), f(levels.temperature), f(levels.staleness_coef),
                                            f(levels.min_fill)))


def level_generator(levels: GridLevelsConfig):
    """``key -> GridLevel``: the random levels of the configured space (lifetimes drawn with them)."""
    return lambda key: generate_level(key, levels.grid_size, levels.max_objects, num_walls=levels.num_walls,
                                      max_steps=(20, levels.max_episode_steps),
                                      lifetime=(levels.lifetime_min, levels.lifetime_max))


def held_out_levels(levels: GridLevelsConfig):
    """``[held_out_levels]`` random levels drawn from :data:`HELD_OUT_SEED` (never a run's key), each with
    the longest lifetime."""
    held_out = jax.vmap(level_generator(levels))(jax.random.split(jax.random.PRNGKey(HELD_OUT_SEED), levels.held_out_levels))
    return held_out._replace(lifetime=jnp.full_like(held_out.lifetime, levels.lifetime_max))


def agent_on_level(agent: Agent, hp, key, level):
    """A fresh agent (``agent.init``) with its environments reset on ``level``."""
    key_init, key_env = jax.random.split(key)
    state = agent.init(key_init, hp)
    env_state, obs = agent.env.reset(key_env, level)
    return state._replace(env_state=env_state, obs=obs)


def train_on_level(agent: Agent, hp, key, level, lifetime, max_updates: int):
    """``(state, last_metrics)``: ``agent`` after ``lifetime`` updates on ``level`` (a scan of ``max_updates``,
    later ones skipped: one program for every lifetime), and the metrics of its last update."""
    key_init, key_run = jax.random.split(key)
    state = agent_on_level(agent, hp, key_init, level)

    def body(carry, x):
        state, step, last = carry
        new, metrics = agent.update(x, state, level, hp)
        alive = step < lifetime
        return (select_tree(alive, new, state), step + 1, select_tree(alive, metrics, last)), None

    _, metrics_shape = jax.eval_shape(agent.update, key_run, state, level, hp)
    no_metrics = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), metrics_shape)
    (state, _, last), _ = jax.lax.scan(body, (state, jnp.zeros((), jnp.int32), no_metrics), jax.random.split(key_run, max_updates))
    return state, last


def pair_fitness(returns: jax.Array) -> jax.Array:
    """Rank fitness within antithetic pairs: ``returns [P]`` (member ``i`` paired with ``i + P/2``) -> ``[P]``,
    +1/2 for the better of a pair, -1/2 for the worse, 0 for a tie."""
    half = returns.shape[0] // 2
    plus = 0.5 * jnp.sign(returns[:half] - returns[half:])
    return jnp.concatenate([plus, -plus])


def meta_regularised_loss(method: RuleSearchConfig, pg_loss, policy_entropy, y_entropy, pi_hat_sq, y_hat_sq):
    """The LPG paper's meta-objective (minimised): the updated agent's policy-gradient loss, entropy bonuses
    for its policy and prediction, and L2 penalties on the rule's outputs ``pi_hat`` and ``y_hat``."""
    return (pg_loss - method.policy_entropy_coef * policy_entropy - method.target_entropy_coef * y_entropy
            + method.policy_l2_coef * pi_hat_sq + method.target_l2_coef * y_hat_sq)


def make_agent_meta_loss(agent: Agent, objective, agent_cfg: LPGAgentConfig, method: RuleSearchConfig):
    """``(rule_params, agent_state, level, key) -> (loss, (state, alive, pvl))``: one agent's regularised
    meta-objective after ``method.inner_updates`` updates by the rule (differentiable in ``rule_params``), its new
    state (no gradient), whether it was still learning, and the PVL of its last update's rollout.

    ``agent`` keeps a value critic (``make_lpg_agent(..., with_critic=True)``); ``objective`` is
    :func:`~jaxrl.agents.lpg.make_policy_gradient_objective` of the same agent config.
    """

    def agent_meta_loss(rule_params, agent_state, level, key):
        hp = lpg_hparams(agent_cfg, rule_params, level.lifetime)
        key_inner, key_meta = jax.random.split(key)
        alive = agent_state.update_step < level.lifetime
        state, metrics = jax.lax.scan(lambda st, k: agent.update(k, st, level, hp), agent_state,
                                      jax.random.split(key_inner, method.inner_updates))
        pg_loss, h_pi, h_y, (env_state, obs) = objective(key_meta, state, level, hp)
        loss = meta_regularised_loss(method, pg_loss, h_pi, h_y, metrics["pi_hat_sq"].mean(), metrics["y_hat_sq"].mean())
        state = jax.lax.stop_gradient(state._replace(env_state=env_state, obs=obs))
        return loss, (state, alive, metrics["positive_value_loss"][-1])

    return agent_meta_loss


def num_levels_per_generation(search, method: RuleSearchConfig) -> int:
    """Levels a generation trains on: one per antithetic pair (es) or one per agent of the meta-batch."""
    return search.population // 2 if method.meta_method == "es" else search.population


def make_lpg_meta_training(search, levels: GridLevelsConfig, agent_cfg: LPGAgentConfig, rule: UpdateRule,
                           baseline: Agent | None, baseline_hp, generations: int, eval_seeds: int = 2,
                           method: RuleSearchConfig = RuleSearchConfig()) -> tuple[Agent, GridWorld]:
    """The meta-search as an :class:`Agent` (``update``: one generation), and its grid-world env.

    Args:
        search: a :class:`~jaxrl.objectives.meta.MetaConfig`: ``population`` candidate rules in
            antithetic pairs (es) or agents per meta-gradient batch (meta_gradient); ``lr``.
        baseline: the agent whose return on a level is algorithmic regret's reference (``groove``), or None.
        eval_seeds: agents trained with the current rule per held-out level by ``evaluate``.
        method: evolution or meta-gradients (:class:`RuleSearchConfig`).

    A meta-gradient generation starts ``population`` agents on the curriculum's levels and
    lives them through ``lifetime_max`` updates in steps of ``inner_updates``: each step
    differentiates the regularised policy-gradient objective of every agent's next rollout
    through its last ``inner_updates`` updates to the rule and takes one Adam step (agents
    past their own lifetime stop and drop out of the gradient).

    Metrics of an update: ``population_returns [P]`` (evaluation returns of the agents trained
    this generation), ``return_mean``, ``return_max``, ``novelty_mean`` (0: the evolution
    driver's layout), ``level_score_mean``, ``replayed`` (1 when the generation replayed
    buffer levels) and, for meta-gradients, ``meta_loss`` (mean over the generation's steps).
    """
    env = GridWorld(levels.grid_size, levels.max_objects, levels.max_episode_steps)
    max_life = levels.lifetime_max
    es = method.meta_method == "es"
    num_levels = num_levels_per_generation(search, method)
    with_critic = levels.curriculum == "plr_pvl" or not es
    agent = make_lpg_agent(agent_cfg, env, rule, max_life, with_critic=with_critic)
    flat_init, unravel = flatten_util.ravel_pytree(rule.init(jax.random.PRNGKey(0)))
    strategy = make_strategy("openai_es", flat_init.shape[0], search.population, "none") if es else None
    meta_opt = optax.chain(optax.clip_by_global_norm(method.meta_grad_norm), optax.scale_by_adam())
    agent_meta_loss = make_agent_meta_loss(agent, make_policy_gradient_objective(agent_cfg, env), agent_cfg, method)
    generate = level_generator(levels)
    uses_buffer = levels.curriculum in BUFFER_CURRICULA
    curriculum = make_curriculum(curriculum_config(levels, num_levels), generate) if uses_buffer else None
    if levels.curriculum == "hand_designed":
        _, hand = hand_designed_levels(levels.grid_size, levels.max_objects, max_life)
        hand = hand._replace(max_steps=jnp.minimum(hand.max_steps, levels.max_episode_steps))
    held_out = held_out_levels(levels)

    def rule_return(key, rule_params, level):
        """``(return, positive value loss)``: mean evaluation return of one agent trained by the rule on
        ``level`` for its lifetime, and the PVL of its last rollout (0 without a critic)."""
        key_train, key_eval = jax.random.split(key)
        hp = lpg_hparams(agent_cfg, rule_params, level.lifetime)
        state, last = train_on_level(agent, hp, key_train, level, level.lifetime, max_life)
        return agent.evaluate(key_eval, state, level, hp).mean(), last.get("positive_value_loss", jnp.zeros(()))

    def baseline_return(key, level):
        key_train, key_eval = jax.random.split(key)
        state, _ = train_on_level(baseline, baseline_hp, key_train, level, level.lifetime, max_life)
        return baseline.evaluate(key_eval, state, level, baseline_hp).mean()

    def sample_levels(key, state: LPGMetaState, hp: LPGMetaHParams):
        if uses_buffer:  # replay only once a whole batch of scored levels is in the buffer
            floor = num_levels / curriculum.config.capacity
            cur_hp = hp.curriculum._replace(min_fill=jnp.maximum(hp.curriculum.min_fill, floor))
            return curriculum.sample(key, state.curriculum, cur_hp)
        if levels.curriculum == "dr":
            return state.curriculum, jax.vmap(generate)(jax.random.split(key, num_levels)), None
        picks = jax.random.randint(key, (num_levels,), 0, hand.lifetime.shape[0])
        return state.curriculum, jax.tree.map(lambda x: x[picks], hand), None

    def score_levels(key, cur, batch, info, returns, pvl, best_returns):
        """The buffer after scoring this generation's levels (``[L]`` mean returns, PVLs and best returns)."""
        replayed = info.kind == REPLAY
        if levels.curriculum == "groove":
            # The baseline's return is the buffer's stored value for a replayed level (computed when it was new).
            reference = jax.lax.cond(replayed, lambda: info.max_returns,
                                     lambda: jax.vmap(baseline_return)(jax.random.split(key, num_levels), batch))
            score = reference - returns
        else:  # plr_pvl / plr_maxmc keep the best return seen on a level beside it
            reference = jnp.maximum(jnp.where(replayed, info.max_returns, -jnp.inf), best_returns)
            score = pvl if levels.curriculum == "plr_pvl" else reference - returns
        return curriculum.update(cur, batch, LevelScores(score, reference), info), score

    def init(key, hp: LPGMetaHParams) -> LPGMetaState:
        key_es, key_cur = jax.random.split(key)
        cur = curriculum.init(key_cur) if uses_buffer else ()
        if es:
            s = strategy.init(key_es, flat_init, hp.evolution)
            return LPGMetaState(s, unravel(strategy.solution(s)), cur)
        params = unravel(flat_init)
        return LPGMetaState(meta_opt.init(params), params, cur)

    def es_generation(key, state: LPGMetaState, batch, hp: LPGMetaHParams):
        """One ES step: ``(strategy state, rule params, [L] returns, [L] PVLs, [L] best returns, metrics)``."""
        key_ask, key_agents, key_tell = jax.random.split(key, 3)
        population, s = strategy.ask(key_ask, state.strategy, hp.evolution)  # [P, D]; i and i + P/2 antithetic
        pair_keys = jax.random.split(key_agents, num_levels)
        twice = lambda x: jnp.concatenate([x, x])  # noqa: E731  member i and i + P/2 share level and agent key
        returns, pvl = jax.vmap(rule_return)(twice(pair_keys), jax.vmap(unravel)(population), jax.tree.map(twice, batch))
        s = strategy.tell(key_tell, population, pair_fitness(returns), s, hp.evolution)
        halves = lambda x: jnp.stack([x[:num_levels], x[num_levels:]])  # noqa: E731
        return (s, unravel(strategy.solution(s)), halves(returns).mean(0), halves(pvl).mean(0), halves(returns).max(0),
                {"population_returns": returns})

    def meta_gradient_generation(key, state: LPGMetaState, batch, hp: LPGMetaHParams):
        """A lifetime of ``population`` agents on ``batch`` with a meta-gradient step every ``inner_updates``."""
        key_init, key_steps, key_eval = jax.random.split(key, 3)
        init_hp = lpg_hparams(agent_cfg, state.params, 0)
        agents = jax.vmap(lambda k, lv: agent_on_level(agent, init_hp, k, lv))(jax.random.split(key_init, num_levels), batch)

        def batch_loss(rule_params, agents, key):
            losses, (agents, alive, pvl) = jax.vmap(agent_meta_loss, in_axes=(None, 0, 0, 0))(
                rule_params, agents, batch, jax.random.split(key, num_levels))
            weight = alive.astype(jnp.float32)
            return jnp.sum(losses * weight) / jnp.maximum(weight.sum(), 1.0), (agents, alive, pvl)

        def step(carry, key):
            params, opt_state, agents, pvl = carry
            (loss, (agents, alive, new_pvl)), grads = jax.value_and_grad(batch_loss, has_aux=True)(params, agents, key)
            updates, opt_state = meta_opt.update(grads, opt_state, params)
            params = jax.tree.map(lambda p, u: p - hp.evolution.lr * u, params, updates)
            return (params, opt_state, agents, jnp.where(alive, new_pvl, pvl)), loss

        meta_steps = -(-max_life // method.inner_updates)
        (params, opt_state, agents, pvl), losses = jax.lax.scan(
            step, (state.params, state.strategy, agents, jnp.zeros(num_levels)), jax.random.split(key_steps, meta_steps))
        eval_hp = lpg_hparams(agent_cfg, params, 0)
        returns = jax.vmap(lambda k, st, lv: agent.evaluate(k, st, lv, eval_hp).mean())(
            jax.random.split(key_eval, num_levels), agents, batch)
        return opt_state, params, returns, pvl, returns, {"population_returns": returns, "meta_loss": losses.mean()}

    def update(key, state: LPGMetaState, env_params_, hp: LPGMetaHParams):
        del env_params_
        key_levels, key_gen, key_base = jax.random.split(key, 3)
        cur, batch, info = sample_levels(key_levels, state, hp)
        generation = es_generation if es else meta_gradient_generation
        search_state, params, level_returns, pvl, best_returns, metrics = generation(key_gen, state, batch, hp)
        score = jnp.zeros(num_levels)
        if uses_buffer:
            cur, score = score_levels(key_base, cur, batch, info, level_returns, pvl, best_returns)
        returns = metrics["population_returns"]
        metrics.update({"return_mean": returns.mean(), "return_max": returns.max(), "novelty_mean": jnp.zeros(()),
                        "level_score_mean": score.mean(),
                        "replayed": (info.kind == REPLAY).astype(jnp.float32) if uses_buffer else jnp.zeros(())})
        return LPGMetaState(search_state, params, cur), metrics

    def evaluate(key, state: LPGMetaState, env_params_, hparams):
        """``[held_out_levels * eval_seeds]`` returns of fresh agents trained with the current rule on held-out levels."""
        del env_params_, hparams
        keys = jax.random.split(key, (levels.held_out_levels, eval_seeds))
        per_level = jax.vmap(lambda ks, lv: jax.vmap(lambda k: rule_return(k, state.params, lv)[0])(ks))(keys, held_out)
        return per_level.reshape(-1)

    steps = (search.population if es else num_levels) * max_life * agent.env_steps_per_update
    meta = Agent(init, update, evaluate, None, int(generations), int(steps), env,
                 policy_of=lambda state: (state.params, ()))
    return meta, env


def random_policy_returns(levels: GridLevelsConfig, agent_cfg: LPGAgentConfig, rule: UpdateRule, eval_seeds: int,
                          key) -> jax.Array:
    """``[held_out_levels * eval_seeds]`` returns of untrained agents (lifetime 0: the initial, near-uniform
    policy) on the held-out levels: the floor a learned rule must rise above."""
    env = GridWorld(levels.grid_size, levels.max_objects, levels.max_episode_steps)
    agent = make_lpg_agent(agent_cfg, env, rule, 1)
    held_out = held_out_levels(levels)
    hp = lpg_hparams(agent_cfg, rule.init(jax.random.PRNGKey(0)), 0)

    def one(k, level):
        state, _ = train_on_level(agent, hp, k, level, 0, 1)
        return agent.evaluate(k, state, level, hp).mean()

    keys = jax.random.split(key, (levels.held_out_levels, eval_seeds))
    return jax.jit(jax.vmap(lambda ks, lv: jax.vmap(lambda k: one(k, lv))(ks)))(keys, held_out).reshape(-1)


def make_baseline(levels: GridLevelsConfig, agent_cfg: LPGAgentConfig) -> tuple[Agent, Any]:
    """PPO trained on a level for a lifetime of ``lifetime_max`` updates of the LPG agents' batch size
    (the tuned reference of algorithmic regret), and its hyperparameters."""
    from jaxrl.agents.ppo import PPOConfig, build_ppo, hparams_from_config

    env = GridWorld(levels.grid_size, levels.max_objects, levels.max_episode_steps)
    cfg = PPOConfig(num_envs=agent_cfg.num_envs, rollout_len=agent_cfg.rollout_len, num_epochs=4, num_minibatches=4,
                    hidden_sizes=(64,), anneal_lr=False, lr=levels.baseline_lr)
    agent, _ = build_ppo(cfg, env, levels.lifetime_max * agent_cfg.num_envs * agent_cfg.rollout_len,
                         deterministic_eval=False)
    return agent, hparams_from_config(cfg)


def rule_spec_check(levels: GridLevelsConfig) -> str | None:
    """Host-side check of the level options (the message names the flag), None if fine."""
    if levels.lifetime_min > levels.lifetime_max:
        return f"--lifetime-min ({levels.lifetime_min}) must not exceed --lifetime-max ({levels.lifetime_max})"
    if levels.curriculum == "hand_designed" and (levels.grid_size < 13 or levels.max_objects < 5):
        return "--curriculum hand_designed: LPG's levels need --grid-size 13 and --max-objects 5 (or more)"
    if levels.num_walls > levels.grid_size ** 2 - levels.max_objects - 1:
        return f"--num-walls must leave room for the start and {levels.max_objects} objects on the board"
    return None

