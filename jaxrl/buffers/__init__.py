"""Experience storage that lives on device inside the compiled program."""
from jaxrl.buffers.replay import ReplayBuffer, add, can_sample, init_buffer, sample, sample_indices

__all__ = ["ReplayBuffer", "add", "can_sample", "init_buffer", "sample", "sample_indices"]
