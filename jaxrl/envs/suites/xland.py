"""XLand-MiniGrid rule sets as levels: generated locally, mutated, and played with the rule set in view.

An XLand level is a rule set (``xminigrid.types.RuleSet``): a goal, production rules and the objects placed on
the grid at reset. XLand-MiniGrid ships its millions of rule sets as benchmark files it downloads; jaxrl never
downloads at run time, so rule sets are generated here, on device, after the recipe of the benchmark
generator (Nikulin et al. 2024, section 3): a goal on a target object, and a chain of ``depth`` production rules
that builds the target from objects on the grid, with distractor objects beside them.

* goal: ``AgentHoldGoal(target)`` (pick it up) or ``AgentNearGoal(target)`` (stand next to it), evenly;
* chain: ``TileNearRule(a_i, b_i -> c_i)`` for ``i < depth``, with ``c_0`` the target and ``c_{i+1} = a_i``; the
  objects on the grid are ``a_{depth-1}``, every ``b_i`` (or the target itself at depth 0) and the distractors;
* objects are distinct (type, colour) pairs from XLand's six object types and ten colours.

Shapes are static (``max_depth`` rules, ``max_depth + 1 + max_distractors`` objects, padded with xminigrid's
empty rule / empty tile) so levels stack, vmap and fill a level buffer. A level's params are
``XLandEnvParams`` with the rule set replaced.

The agent sees the rule set (``observe_ruleset``): the flattened egocentric view followed by the goal's and the
rules' encodings, as a curriculum over rule sets needs a policy that knows which task it is in (XLand-MiniGrid's
meta-RL agents infer it over trials instead).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from xminigrid.core.constants import TILES_REGISTRY, Colors, Tiles
from xminigrid.core.goals import AgentHoldGoal, AgentNearGoal
from xminigrid.core.rules import EmptyRule, TileNearRule
from xminigrid.types import RuleSet

OBJECT_TYPES = (Tiles.BALL, Tiles.SQUARE, Tiles.PYRAMID, Tiles.KEY, Tiles.STAR, Tiles.HEX)
OBJECT_COLOURS = (Colors.RED, Colors.GREEN, Colors.BLUE, Colors.PURPLE, Colors.YELLOW, Colors.GREY, Colors.WHITE,
                  Colors.BROWN, Colors.PINK, Colors.ORANGE)
# Every (type, colour) object: [60, 2] uint8.
OBJECTS = jnp.asarray([[t, c] for t in OBJECT_TYPES for c in OBJECT_COLOURS], jnp.uint8)
EMPTY_TILE = TILES_REGISTRY[Tiles.EMPTY, Colors.EMPTY]
GOAL_KINDS = (1, 3)  # xminigrid's goal ids: AgentHoldGoal, AgentNearGoal


def ruleset(goal_kind, target, chain_a, chain_b, depth, distractors, distractor_on) -> RuleSet:
    """The padded rule set of a goal on ``target`` [2] built by the first ``depth`` rules of the chain.

    Args:
        goal_kind: 1 (hold) or 3 (near), int scalar.
        target: the goal's object ``[2]``.
        chain_a, chain_b: ``[D, 2]`` the ingredients of each rule; rule ``i`` makes the target (``i = 0``) or
            ``chain_a[i - 1]``.
        depth: rules in use, ``0 <= depth <= D`` (traced).
        distractors: ``[K, 2]`` objects placed beside the chain's; ``distractor_on`` ``[K]`` bool which are.
    """
    max_depth = chain_a.shape[0]
    hold = AgentHoldGoal(tile=target).encode()
    near = AgentNearGoal(tile=target).encode()
    goal = jnp.where(goal_kind == 1, hold, near)
    products = jnp.concatenate([target[None], chain_a[:-1]], axis=0)  # rule i makes products[i]
    rules = jax.vmap(lambda a, b, c: TileNearRule(tile_a=a, tile_b=b, prod_tile=c).encode())(chain_a, chain_b, products)
    in_use = jnp.arange(max_depth) < depth
    rules = jnp.where(in_use[:, None], rules, EmptyRule().encode()[None])
    # On the grid: the last rule's first ingredient (the target at depth 0), every used rule's second ingredient.
    first = jnp.where(depth == 0, target, chain_a[jnp.clip(depth - 1, 0, max_depth - 1)])
    seconds = jnp.where(in_use[:, None], chain_b, EMPTY_TILE)
    extra = jnp.where(distractor_on[:, None], distractors, EMPTY_TILE)
    return RuleSet(goal=goal, rules=rules, init_tiles=jnp.concatenate([first[None], seconds, extra], axis=0))


def generate_ruleset(key, max_depth: int = 2, max_distractors: int = 3) -> RuleSet:
    """A random rule set: goal kind even, depth uniform in ``0..max_depth``, each distractor present with
    probability 1/2, every object distinct."""
    k_objects, k_goal, k_depth, k_on = jax.random.split(key, 4)
    picks = OBJECTS[jax.random.choice(k_objects, OBJECTS.shape[0], (1 + 2 * max_depth + max_distractors,), replace=False)]
    target, chain_a, chain_b = picks[0], picks[1:1 + max_depth], picks[1 + max_depth:1 + 2 * max_depth]
    distractors = picks[1 + 2 * max_depth:]
    goal_kind = jnp.asarray(GOAL_KINDS)[jax.random.randint(k_goal, (), 0, 2)]
    depth = jax.random.randint(k_depth, (), 0, max_depth + 1)
    return ruleset(goal_kind, target, chain_a, chain_b, depth, distractors, jax.random.bernoulli(k_on, 0.5, (max_distractors,)))


def mutate_ruleset(key, rules: RuleSet, num_edits: int = 1) -> RuleSet:
    """ACCEL's edit for rule sets, ``num_edits`` times: switch the goal between hold and near, or put a new random
    object into (or clear) one distractor slot. The goal's object and the chain stay, so an edit keeps the level
    solvable and changes it a little."""
    num_chain = rules.rules.shape[0] + 1  # init tiles before the distractor slots

    def edit(rules, k):
        k_kind, k_slot, k_object, k_on = jax.random.split(k, 4)
        goal = rules.goal
        switched = goal.at[0].set(jnp.where(goal[0] == 1, 3, 1).astype(goal.dtype))
        slot = num_chain + jax.random.randint(k_slot, (), 0, rules.init_tiles.shape[0] - num_chain)
        new_object = jnp.where(jax.random.bernoulli(k_on), OBJECTS[jax.random.randint(k_object, (), 0, OBJECTS.shape[0])],
                               EMPTY_TILE)
        change_goal = jax.random.bernoulli(k_kind, 1.0 / 3.0)
        return RuleSet(goal=jnp.where(change_goal, switched, goal), rules=rules.rules,
                       init_tiles=jnp.where(change_goal, rules.init_tiles, rules.init_tiles.at[slot].set(new_object))), None

    return jax.lax.scan(edit, rules, jax.random.split(key, num_edits))[0]


def ruleset_depth(rules: RuleSet) -> jax.Array:
    """Production rules in use (non-empty rule encodings)."""
    return jnp.sum(jnp.any(rules.rules != 0, axis=-1), axis=-1)


# Hand-designed held-out rule sets: name -> (goal kind, target, chain (a, b) pairs).
HELD_OUT_RULESETS = {
    "HoldBlueBall": (1, (Tiles.BALL, Colors.BLUE), ()),
    "NearRedKey": (3, (Tiles.KEY, Colors.RED), ()),
    "MakeAndHoldStar": (1, (Tiles.STAR, Colors.YELLOW), (((Tiles.SQUARE, Colors.GREEN), (Tiles.PYRAMID, Colors.PURPLE)),)),
    "MakeTwiceNearHex": (3, (Tiles.HEX, Colors.PINK), (((Tiles.BALL, Colors.ORANGE), (Tiles.KEY, Colors.WHITE)),
                                                      ((Tiles.SQUARE, Colors.BROWN), (Tiles.STAR, Colors.GREY)))),
}


def held_out_rulesets(max_depth: int = 2, max_distractors: int = 3) -> tuple[tuple[str, ...], RuleSet]:
    """The hand-designed rule sets (no distractors), stacked ``[L, ...]``."""
    built = []
    for kind, target, chain in HELD_OUT_RULESETS.values():
        a = np.zeros((max_depth, 2), np.uint8)
        b = np.zeros((max_depth, 2), np.uint8)
        for i, (first, second) in enumerate(chain):
            a[i], b[i] = first, second
        built.append(ruleset(jnp.asarray(kind), jnp.asarray(target, jnp.uint8), jnp.asarray(a), jnp.asarray(b),
                             jnp.asarray(len(chain)), jnp.zeros((max_distractors, 2), jnp.uint8),
                             jnp.zeros((max_distractors,), bool)))
    return tuple(HELD_OUT_RULESETS), jax.tree.map(lambda *x: jnp.stack(x), *built)


# Colours of xminigrid's colour ids, for drawing a rule set.
_PALETTE = np.array([[255, 255, 255], [220, 50, 50], [60, 170, 80], [50, 90, 220], [150, 70, 200], [235, 200, 40],
                     [128, 128, 128], [20, 20, 20], [240, 140, 30], [250, 250, 250], [130, 80, 40], [240, 130, 190]],
                    np.uint8)


def render_ruleset(rules: RuleSet, cell: int = 8) -> np.ndarray:
    """An RGB image of a rule set: row 0 the goal (a dark cell for hold, light for near, then the target), one
    row per rule slot (ingredient, ingredient, product; blank when unused), a last row of the objects on the grid;
    each object a cell of its colour with a mark per object type. The size depends only on the padding:
    ``[(2 + max_depth) * cell, max(4, objects) * cell, 3]`` uint8, so levels tile into one image."""
    goal, rule_rows, tiles = (np.asarray(x) for x in (rules.goal, rules.rules, rules.init_tiles))
    used = [r for r in rule_rows if r.any()]
    objects = [t for t in tiles if t.any()]
    rows = 2 + len(rule_rows)
    width = max(4, len(tiles))
    image = np.full((rows * cell, width * cell, 3), 235, np.uint8)

    def draw(row, col, tile):
        block = image[row * cell:(row + 1) * cell, col * cell:(col + 1) * cell]
        block[1:-1, 1:-1] = _PALETTE[int(tile[1]) % len(_PALETTE)]
        marks = max(1, int(tile[0]) - 2)  # one mark per object type id
        block[cell // 2, 1:1 + min(marks, cell - 2)] = 0

    image[:cell, :cell] = 60 if goal[0] == 1 else 200
    draw(0, 1, goal[1:3])
    for i, rule in enumerate(used):
        draw(1 + i, 0, rule[1:3]), draw(1 + i, 1, rule[3:5]), draw(1 + i, 3, rule[5:7])
    for j, tile in enumerate(objects):
        draw(rows - 1, j, tile)
    return image
