"""Settings of the mock engine and its timing model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["EngineConfig", "TimingModel"]


@dataclass(frozen=True)
class TimingModel:
    """Simulated duration of one forward pass, in seconds before the speedup ratio.

    A pass with prefill work costs ``prefill_base_s + prefill_per_token_s * tokens``; a pass
    with decode work adds ``decode_base_s + decode_per_kv_token_s * kv_tokens`` (the sum of
    the decoding sequences' lengths). The defaults approximate ai-dynamo 1.6.1's mocker.
    """

    prefill_base_s: float = 0.016
    prefill_per_token_s: float = 0.000016
    decode_base_s: float = 0.018
    decode_per_kv_token_s: float = 0.000024

    def __post_init__(self) -> None:
        for name in (
            "prefill_base_s",
            "prefill_per_token_s",
            "decode_base_s",
            "decode_per_kv_token_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def prefill_seconds(self, tokens: int) -> float:
        """Cost of the prefill part of a pass that computes ``tokens`` prompt tokens."""
        return self.prefill_base_s + self.prefill_per_token_s * tokens if tokens else 0.0

    def decode_seconds(self, sequences: int, kv_tokens: int) -> float:
        """Cost of the decode part of a pass over ``sequences`` of ``kv_tokens`` in total."""
        return self.decode_base_s + self.decode_per_kv_token_s * kv_tokens if sequences else 0.0


@dataclass(frozen=True)
class EngineConfig:
    """Settings of one mock worker (one data-parallel rank), named as ``dynamo.mocker``'s.

    ``speedup_ratio`` divides every simulated duration (0 means no delays at all);
    ``decode_speedup_ratio`` further divides decode time. ``output_mode`` ``random`` draws
    seeded tokens from the non-special vocabulary; ``echo`` repeats the prompt. Requests
    without ``max_tokens`` get ``max_model_len - prompt`` or else ``default_max_tokens``.
    """

    block_size: int = 16
    num_gpu_blocks: int = 16384
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    max_model_len: int | None = None
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    preemption_mode: Literal["lifo", "fifo"] = "lifo"
    speedup_ratio: float = 1.0
    decode_speedup_ratio: float = 1.0
    output_mode: Literal["random", "echo"] = "random"
    seed: int = 0
    default_max_tokens: int = 16
    timing: TimingModel = field(default_factory=TimingModel)

    def __post_init__(self) -> None:
        positive = {
            "num_gpu_blocks": self.num_gpu_blocks,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "default_max_tokens": self.default_max_tokens,
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.block_size < 2:
            raise ValueError(f"block_size must be at least 2, got {self.block_size}")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise ValueError(f"max_model_len must be at least 2, got {self.max_model_len}")
        if self.preemption_mode not in ("lifo", "fifo"):
            raise ValueError(f"preemption_mode must be lifo or fifo, got {self.preemption_mode}")
        if self.output_mode not in ("random", "echo"):
            raise ValueError(f"output_mode must be random or echo, got {self.output_mode}")
        if self.speedup_ratio < 0:
            raise ValueError(f"speedup_ratio must not be negative, got {self.speedup_ratio}")
        if self.decode_speedup_ratio <= 0:
            raise ValueError(
                f"decode_speedup_ratio must be positive, got {self.decode_speedup_ratio}"
            )

    def pass_seconds(self, prefill_tokens: int, decode_sequences: int, kv_tokens: int) -> float:
        """Wall time of one forward pass after the speedup ratios (0.0 with speedup 0)."""
        if self.speedup_ratio == 0:
            return 0.0
        prefill = self.timing.prefill_seconds(prefill_tokens)
        decode = self.timing.decode_seconds(decode_sequences, kv_tokens)
        return (prefill + decode / self.decode_speedup_ratio) / self.speedup_ratio
