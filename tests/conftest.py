"""Shared test setup.

* JAX runs on the CPU (tests are small and must not grab an accelerator).
* The persistent compilation cache of the runs tests start lives in the temporary directory, not the user's cache.
* XLA:CPU compiles with LLVM's lowest backend optimisation level and without the new fusion emitters:
  the suite's programs are small and short, so compile time dominates (tests/test_probes.py +
  tests/test_mdpo.py on 2 idle cores: 86 s with the defaults, 53 s with level 0). Level 1, not 0: at
  level 0 XLA:CPU (jax 0.10.2) computes NaN actor gradients in SAC programs vmapped over two seeds that
  every other setting computes finite (the same state and batch run op by op, or at level 1, or with the
  defaults, stay finite); tests/test_sac.py + test_probes.py + test_mdpo.py take 63 s at level 1, 41 s at 0.
  Results within a test are compared under the same flags, so equalities still hold.
* ``make test`` leaves out the ``slow`` tier (``make test-all`` runs it): the tests marked in their files
  and those in :data:`SLOW`, which repeat a check the fast tier makes elsewhere at a larger size or
  through another entry (sharded / multi-process runs, CLI variants of in-process tests, extra probes).
"""
import os
import tempfile

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAXRL_COMPILE_CACHE", os.path.join(tempfile.gettempdir(), "jaxrl-tests-xla-cache"))
# Compile-time flags for the suite's small programs (a PPO CartPole run on 2 cores: compile 21.5 s -> 6.7 s).
TEST_XLA_FLAGS = {"xla_backend_optimization_level": "1", "xla_cpu_use_fusion_emitters": "false"}
_flags = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = " ".join([_flags] + [f"--{k}={v}" for k, v in TEST_XLA_FLAGS.items() if k not in _flags]).strip()

# node id (without "tests/") -> the fast-tier test that covers the same thing
SLOW = {
    # several devices / processes: the single-process driver and its members are tested in test_programs
    "test_parallel.py::test_sharded_and_batched_training_equals_one_device": "test_programs lifecycle",
    "test_multiprocess.py::test_two_processes_train_what_one_process_trains": "test_programs lifecycle",
    "test_multiprocess.py::test_two_processes_evolve_what_one_process_evolves": "test_programs lifecycle",
    "test_multiprocess.py::test_two_process_run_resumes_from_its_checkpoint": "test_programs resume",
    "test_multiprocess.py::test_process_zero_refusing_stops_every_process": "test_multiprocess bad flag",
    # every preset (builds brax and MinAtar envs): test_cli resolves the CartPole presets
    "test_cli.py::test_every_preset_resolves": "test_cli help / existing dir",
    # CLI or second-path variants of in-process lifecycle tests
    "test_report.py::test_report_of_curriculum_runs_scores_held_out_solve_rates": "test_report refuses / test_stats",
    "test_report.py::test_report_writes_every_file_with_groups_per_grid_point": "test_report refuses / test_stats",
    "test_run_lifecycle.py::test_resume_after_sigkill_is_bit_exact": "test_programs damaged-checkpoint resume",
    "test_run_lifecycle.py::test_resume_with_every_checkpoint_damaged": "test_programs damaged-checkpoint resume",
    "test_run_lifecycle.py::test_nan_guard_stops_and_keeps_last_good_checkpoint": "test_programs divergence",
    "test_meta.py::test_meta_train_command_writes_objectives_and_refuses_bad_input": "test_programs[meta_train]",
    "test_meta.py::test_population_fitness_is_the_inner_run_per_member_and_seed": "test_programs[meta_train]",
    "test_meta.py::test_meta_training_increases_fitness": "test_objectives saved objective",
    "test_programs.py::test_sweep_over_a_traced_option_is_one_program_with_a_grid[ued-replay_prob=0.0,1.0]": "train sweep",
    "test_programs.py::test_sweep_over_a_traced_option_is_one_program_with_a_grid[evolve-sigma=0.03,0.1]": "train sweep",
    "test_programs.py::test_sweep_over_a_traced_option_is_one_program_with_a_grid[qd-iso_sigma=0.01,0.1]": "train sweep",
    "test_programs.py::test_interrupted_run_with_a_damaged_checkpoint_resumes_bit_identical[meta_train]": "train/evolve/ued",
    "test_programs.py::test_divergence_stops_with_exit_3_and_keeps_the_last_good_checkpoint[meta_train]": "train/evolve/ued",
    "test_dqn.py::test_cli_run_policy_and_resume": "test_programs[train]",
    "test_dqn.py::test_vmapped_seeds_and_grid_equal_single_runs": "test_programs sweep",
    "test_dqn.py::test_probe_observation_and_action_dependent_reward": "test_probes",
    "test_dqn.py::test_probe_one_step_discount_bootstraps_through_target": "test_dqn truncation probe",
    "test_runtime.py::test_train_cli_one_thread_gives_the_same_results": "test_runtime in-process",
    "test_sac.py::test_saved_sac_policy_acts_in_bounds": "test_sac learns",
    "test_sac.py::test_vmapped_seeds_and_grid_equal_single_runs": "test_programs sweep",
    "test_sac.py::test_probe_continuous_action_reward_finds_the_best_action_and_its_q": "test_sac learns",
    "test_invariance.py::test_vmapped_seeds_equal_single_runs": "test_programs sweep",
    "test_invariance.py::test_chunked_runner_equals_single_chunk_train[False]": "[True]",
    "test_notebooks.py::test_notebook_runs[curricula.ipynb]": "quickstart notebook",
    "test_notebooks.py::test_notebook_runs[evolution.ipynb]": "quickstart notebook",
    "test_ued.py::test_entry_point_writes_the_run_and_resumes_bit_exactly": "test_programs[ued]",
    "test_ued.py::test_entry_point_runs_cartpole_physics_levels": "test_programs[ued]",
    "test_paired.py::test_one_compiled_paired_iteration_updates_all_three_agents": "test_paired unit tests",
    "test_pqn.py::test_vmapped_members_equal_single_runs": "test_programs sweep",
    "test_pqn.py::test_probe_truncation_bootstraps_through_time_limit[hl_gauss]": "[mse]",
    "test_pqn.py::test_probe_action_values_and_greedy_policy": "test_pqn learns",
    "test_pqn.py::test_run_directory_and_saved_greedy_policy": "test_programs[train]",
    "test_pqn.py::test_probe_one_step_discount_bootstraps": "[mse] truncation probe",
    "test_pqn.py::test_probe_observation_dependent_reward": "test_pqn learns",
    "test_ppo_hl_gauss.py::test_hl_gauss_bootstraps_through_truncation": "one-step discount probe",
    "test_ppo_hl_gauss.py::test_hl_gauss_observation_dependent_value": "learns CartPole",
    "test_cli.py::test_sweep_grid_in_one_program": "test_programs sweep",
    "test_cli.py::test_train_cli_writes_complete_run_directory": "test_programs[train]",
    "test_recurrent_ppo.py::test_recomputed_log_probs_equal_the_rollouts[lstm]": "[gru]",
    "test_evolution.py::test_novelty_search_escapes_the_deceptive_maze_where_fitness_ga_does_not": "novelty unit tests",
    "test_evolution.py::test_vmapped_seeds_equal_single_runs": "test_programs sweep",
    "test_evolution.py::test_run_directory_resume_bit_exact_and_saved_policy": "test_programs[evolve]",
    "test_mdpo.py::test_mdpo_observation_and_action_dependent_reward": "learns CartPole",
    "test_mdpo.py::test_mdpo_continuous_action_reward": "learns CartPole",
    "test_objectives.py::test_learned_drift_is_zero_at_one_and_non_negative[ppo-ta_lpo]": "[ppo-lpo]",
    "test_objectives.py::test_learned_drift_is_zero_at_one_and_non_negative[random-lpo]": "[ppo-lpo]",
    "test_traced_settings.py::test_vmapped_evolution_over_two_sigmas_equals_each_alone[ga]": "[openai_es]",
    "test_traced_settings.py::test_default_hparams_reproduce_the_closed_over_evosax_strategy[snes]": "[openai_es]",
    "test_traced_settings.py::test_default_hparams_reproduce_the_closed_over_ga_mutation": "[openai_es]",
    "test_envs.py::test_brax_inverted_pendulum_truncation_and_auto_reset": "gymnax adapter truncation tests",
    "test_envs.py::test_make_every_registered_env[Freeway-MinAtar]": "other MinAtar games",
    "test_envs.py::test_make_every_registered_env[Seaquest-MinAtar]": "other MinAtar games",
    "test_programs.py::test_complete_run_directory[ued]": "ued's damaged-checkpoint resume",
    "test_programs.py::test_divergence_stops_with_exit_3_and_keeps_the_last_good_checkpoint[ued]": "[train]",
    "test_invariance.py::test_chunked_runner_equals_single_chunk_train[True]": "bit-identical resume across chunks",
    "test_report.py::test_report_refuses_to_overwrite_and_names_the_flag": "test_report unit tests, test_stats",
    "test_mdpo.py::test_mdpo_learns_cartpole_with_swept_kl_coef": "test_losses MDPO math",
    "test_ppo_hl_gauss.py::test_hl_gauss_ppo_learns_cartpole": "test_hl_gauss math",
    "test_sac.py::test_sac_learns_pendulum_quickly": "SAC truncation probe, twin critics",
    "test_run_lifecycle.py::test_overwrite_clears_the_previous_runs_checkpoints": "test_cli existing directory",
    "test_run_lifecycle.py::test_nan_policy_mask_keeps_sweep_running": "test_programs divergence",
    "test_traced_settings.py::test_vmapped_curriculum_over_two_settings_equals_each_alone": "test_programs sweep",
    "test_traced_settings.py::test_vmapped_evolution_over_two_sigmas_equals_each_alone[openai_es]": "test_programs sweep",
    "test_probes.py::test_continuous_action_reward_gaussian_mean": "the other PPO probes",
    "test_probes.py::test_observation_dependent_reward_value_follows_obs": "the other PPO probes",
    "test_probes.py::test_action_dependent_reward_policy_picks_action_one": "the other PPO probes",
    "test_evolution.py::test_cli_refuses_to_overwrite_without_traceback": "test_programs bad input",
    "test_multiprocess.py::test_entry_point_bad_flag_is_one_line_and_exit_2": "test_programs bad input",
    "test_recurrent_ppo.py::test_recomputed_log_probs_equal_the_rollouts[gru]": "unroll resets test",
    "test_lpg.py::test_rule_gradient_reaches_the_rule_parameters": "test_lpg updates",
    "test_lpg_meta.py::test_meta_gradient_generation_moves_the_rule[dr]": "its [plr_pvl] case",
    "test_lpg_meta.py::test_agent_past_its_lifetime_drops_out_of_the_meta_gradient": "test_lpg lifetime cut-off",
    "test_parallel.py::test_sharded_evolution_is_bitwise_equal": "test_programs lifecycle",
    "test_objectives.py::test_ppo_initialisation_approximates_the_clip_drift": "[ppo-lpo] drift properties",
    "test_report.py::test_labels_and_dirname_methods": "test_report unit tests",
    "test_invariance.py::test_vmapped_hyperparameter_grid_equals_single_runs": "test_programs sweep",
    "test_run_lifecycle.py::test_tensorboard_and_wandb_offline": "the run directory's metrics.jsonl tests",
    # runtime-heavy under the suite's unoptimised XLA flags
    "test_objectives.py::test_learned_drift_is_zero_at_one_and_non_negative[ppo-lpo]": "[random-ta_lpo]",
    "test_sac.py::test_probe_truncation_bootstraps": "SAC's squashed density and twin critics",
    "test_pqn.py::test_learns_cartpole": "PQN truncation probe",
}
# test_envs' every-registered-env check keeps one env of each family in the fast tier.
FAST_ENVS = {"CartPole-v1", "Pendulum-v1", "Breakout-MinAtar", "Catch-bsuite", "MaskedCartPole-v1", "probe/ConstantReward",
             "DeceptiveMaze-v0", "Maze", "GridWorld-dense"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        node = item.nodeid.removeprefix("tests/")
        every_env = node.startswith("test_envs.py::test_make_every_registered_env[")
        if node in SLOW or (every_env and node.split("[", 1)[1][:-1] not in FAST_ENVS):
            item.add_marker(pytest.mark.slow)
