"""Meta-training an LPG update rule by evolution over a curriculum of grid worlds (LPG, TA-LPG, GROOVE).

One generation (one compiled update of the shared loop) does, for ``P`` candidate
rules in ``P / 2`` antithetic pairs:

1. the curriculum gives ``P / 2`` levels (:mod:`jaxrl.envs.levels.gridworld`): fresh random
   ones (``dr``), LPG's five hand-designed ones (``hand_designed``), or a PLR buffer's
   replay or new levels (``groove``: scored by algorithmic regret; ``plr_maxmc``);
2. both members of pair ``i`` train an agent on level ``i`` from the same initial agent
   and environment state for the level's lifetime, and are evaluated on it
   (GROOVE's antithetic task sampling: the pair differs only by its rule);
3. fitness is rank-based within each pair (winner +1/2, loser -1/2, a tie 0), so levels
   of any reward scale weigh the same; OpenAI-ES steps its mean.

Algorithmic regret (GROOVE) of a level is the return of a tuned baseline agent
(PPO) trained on it for the same lifetime minus the return of the agents the
current rule trained there. The baseline's return depends only on the level, so
it is computed once, when a level is new, and kept in the buffer beside it
(the GROOVE reference retrains a baseline for every level at every step; its own
notes call that very inefficient). MaxMC here is ``best return ever seen on the
level - return of the rule's agents`` (an LPG agent has no value function; its
return stands in for ``V(s_0)``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import flatten_util

from jaxrl.agents.base import Agent
from jaxrl.agents.lpg import LPGAgentConfig, UpdateRule, lpg_hparams, make_lpg_agent
from jaxrl.config import option
from jaxrl.curricula.curriculum import REPLAY, CurriculumConfig, CurriculumHParams, LevelScores, make_curriculum
from jaxrl.envs.core import select_tree
from jaxrl.envs.levels.gridworld import GridWorld, generate_level, hand_designed_levels
from jaxrl.evolution.strategies import EvolutionHParams, make_strategy

LEVEL_CURRICULA = ("groove", "dr", "hand_designed", "plr_maxmc")
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
    capacity: int = option(1000, "PLR level buffer capacity (groove, plr_maxmc)", minimum=1)
    replay_prob: float = option(0.5, "probability that a generation replays buffer levels", traced=True,
                                minimum=0.0, maximum=1.0)
    min_fill: float = option(0.0, "buffer fraction filled before replaying", traced=True, minimum=0.0, maximum=1.0)
    temperature: float = option(1.0, "rank prioritisation temperature", traced=True, minimum=1e-6)
    staleness_coef: float = option(0.1, "staleness weight in the replay mix", traced=True, minimum=0.0, maximum=1.0)
    baseline_lr: float = option(2.5e-4, "learning rate of the PPO baseline of algorithmic regret", positive=True)


class LPGMetaHParams(NamedTuple):
    """Traced settings of a meta-training run: the outer search's step sizes and the curriculum's."""

    evolution: EvolutionHParams
    curriculum: CurriculumHParams


class LPGMetaState(NamedTuple):
    strategy: Any
    params: Any  # rule parameters of the search mean
    curriculum: Any


def curriculum_config(levels: GridLevelsConfig, num_levels: int) -> CurriculumConfig:
    """The PLR buffer behind ``groove`` / ``plr_maxmc`` (new and replayed levels are both trained on, as in GROOVE)."""
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


def train_on_level(agent: Agent, hp, key, level, lifetime, max_updates: int):
    """The state of ``agent`` after ``lifetime`` updates on ``level`` (a scan of ``max_updates``, later ones
    skipped: one program for every lifetime)."""
    key_init, key_env, key_run = jax.random.split(key, 3)
    state = agent.init(key_init, hp)
    env_state, obs = agent.env.reset(key_env, level)
    state = state._replace(env_state=env_state, obs=obs)

    def body(carry, x):
        state, step = carry
        new, _ = agent.update(x, state, level, hp)
        return (select_tree(step < lifetime, new, state), step + 1), None

    (state, _), _ = jax.lax.scan(body, (state, jnp.zeros((), jnp.int32)), jax.random.split(key_run, max_updates))
    return state


def pair_fitness(returns: jax.Array) -> jax.Array:
    """Rank fitness within antithetic pairs: ``returns [P]`` (member ``i`` paired with ``i + P/2``) -> ``[P]``,
    +1/2 for the better of a pair, -1/2 for the worse, 0 for a tie."""
    half = returns.shape[0] // 2
    plus = 0.5 * jnp.sign(returns[:half] - returns[half:])
    return jnp.concatenate([plus, -plus])


def make_lpg_meta_training(search, levels: GridLevelsConfig, agent_cfg: LPGAgentConfig, rule: UpdateRule,
                           baseline: Agent | None, baseline_hp, generations: int, eval_seeds: int = 2) -> tuple[Agent, GridWorld]:
    """The meta-search as an :class:`Agent` (``update``: one generation), and its grid-world env.

    Args:
        search: a :class:`~jaxrl.objectives.meta.MetaConfig` (openai_es; ``population`` even).
        baseline: the agent whose return on a level is algorithmic regret's reference (``groove``), or None.
        eval_seeds: agents trained with the search mean per held-out level by ``evaluate``.

    Metrics of an update: ``population_returns [P]`` (the raw returns), ``return_mean``,
    ``return_max``, ``novelty_mean`` (0: the evolution driver's layout), ``level_score_mean``,
    ``replayed`` (1 when the generation replayed buffer levels).
    """
    env = GridWorld(levels.grid_size, levels.max_objects, levels.max_episode_steps)
    max_life = levels.lifetime_max
    num_levels = search.population // 2
    agent = make_lpg_agent(agent_cfg, env, rule, max_life)
    flat_init, unravel = flatten_util.ravel_pytree(rule.init(jax.random.PRNGKey(0)))
    strategy = make_strategy("openai_es", flat_init.shape[0], search.population, "none")
    generate = level_generator(levels)
    uses_buffer = levels.curriculum in ("groove", "plr_maxmc")
    curriculum = make_curriculum(curriculum_config(levels, num_levels), generate) if uses_buffer else None
    if levels.curriculum == "hand_designed":
        _, hand = hand_designed_levels(levels.grid_size, levels.max_objects, max_life)
        hand = hand._replace(max_steps=jnp.minimum(hand.max_steps, levels.max_episode_steps))
    held_out = held_out_levels(levels)

    def rule_return(key, rule_params, level):
        """Mean evaluation return of one agent trained by the rule on ``level`` for its lifetime."""
        key_train, key_eval = jax.random.split(key)
        hp = lpg_hparams(agent_cfg, rule_params, level.lifetime)
        state = train_on_level(agent, hp, key_train, level, level.lifetime, max_life)
        return agent.evaluate(key_eval, state, level, hp).mean()

    def baseline_return(key, level):
        key_train, key_eval = jax.random.split(key)
        state = train_on_level(baseline, baseline_hp, key_train, level, level.lifetime, max_life)
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

    def init(key, hp: LPGMetaHParams) -> LPGMetaState:
        key_es, key_cur = jax.random.split(key)
        s = strategy.init(key_es, flat_init, hp.evolution)
        cur = curriculum.init(key_cur) if uses_buffer else ()
        return LPGMetaState(s, unravel(strategy.solution(s)), cur)

    def update(key, state: LPGMetaState, env_params_, hp: LPGMetaHParams):
        del env_params_
        key_levels, key_ask, key_agents, key_base, key_tell = jax.random.split(key, 5)
        cur, batch, info = sample_levels(key_levels, state, hp)
        population, s = strategy.ask(key_ask, state.strategy, hp.evolution)  # [P, D]; i and i + P/2 antithetic
        pair_keys = jax.random.split(key_agents, num_levels)
        twice = lambda x: jnp.concatenate([x, x])  # noqa: E731  member i and i + P/2 share level and agent key
        returns = jax.vmap(rule_return)(twice(pair_keys), jax.vmap(unravel)(population), jax.tree.map(twice, batch))
        s = strategy.tell(key_tell, population, pair_fitness(returns), s, hp.evolution)
        level_returns = 0.5 * (returns[:num_levels] + returns[num_levels:])  # [L]
        score = jnp.zeros(num_levels)
        if uses_buffer:
            replayed = info.kind == REPLAY
            if levels.curriculum == "groove":
                # The baseline's return is the buffer's stored value for a replayed level (computed when it was new).
                reference = jax.lax.cond(replayed, lambda: info.max_returns,
                                         lambda: jax.vmap(baseline_return)(jax.random.split(key_base, num_levels), batch))
                score = reference - level_returns
            else:  # plr_maxmc: the best return ever seen on the level minus the rule's
                reference = jnp.maximum(jnp.where(replayed, info.max_returns, -jnp.inf), jnp.max(
                    jnp.stack([returns[:num_levels], returns[num_levels:]]), axis=0))
                score = reference - level_returns
            cur = curriculum.update(cur, batch, LevelScores(score, reference), info)
        metrics = {"population_returns": returns, "return_mean": returns.mean(), "return_max": returns.max(),
                   "novelty_mean": jnp.zeros(()), "level_score_mean": score.mean(),
                   "replayed": (info.kind == REPLAY).astype(jnp.float32) if uses_buffer else jnp.zeros(())}
        return LPGMetaState(s, unravel(strategy.solution(s)), cur), metrics

    def evaluate(key, state: LPGMetaState, env_params_, hparams):
        """``[held_out_levels * eval_seeds]`` returns of fresh agents trained with the search mean on held-out levels."""
        del env_params_, hparams
        keys = jax.random.split(key, (levels.held_out_levels, eval_seeds))
        per_level = jax.vmap(lambda ks, lv: jax.vmap(lambda k: rule_return(k, state.params, lv))(ks))(keys, held_out)
        return per_level.reshape(-1)

    steps = search.population * max_life * agent.env_steps_per_update
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
        state = train_on_level(agent, hp, k, level, 0, 1)
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

