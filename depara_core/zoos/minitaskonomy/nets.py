"""The one network design every mini-taskonomy task shares: a small encoder and a task head.

The encoder maps a 32x32 RGB image in [0, 1] through five conv-BN-ReLU blocks to an 8x8x8 code
(``encoder.block1`` .. ``encoder.block5``; the code is the output of ``encoder``). A dense head
predicts a 32x32 map from the code (a 3x3 conv block and a 1x1 conv at 8x8, a 1x1 conv to 16 values
per output channel, pixel shuffle by 4: light, so that the encoder does the work); an image head is a two-layer MLP on the flattened code.

>>> net = task_net(TASKS["depth"])
>>> tuple(net(torch.zeros(2, 3, 32, 32)).shape), encoder_params()
((2, 1, 32, 32), 65312)
>>> [name for name, _ in net.named_children()], LAYER_NAMES[0], ENCODER_LAYER
(['encoder', 'head'], 'encoder.block1', 'encoder')
"""

from __future__ import annotations

import torch
from torch import nn

from depara_core.zoos.minitaskonomy.tasks import TASKS, Task

__all__ = [
    "RESOLUTION",
    "WIDTHS",
    "STRIDES",
    "CODE_SHAPE",
    "HEAD_WIDTH",
    "LAYER_NAMES",
    "ENCODER_LAYER",
    "Block",
    "PixelShuffle",
    "Encoder",
    "DenseHead",
    "ImageHead",
    "TaskNet",
    "make_head",
    "task_net",
    "encoder_net",
    "encoder_params",
    "init_seed",
]

RESOLUTION = 32
WIDTHS: tuple[int, ...] = (16, 32, 64, 64, 8)
STRIDES: tuple[int, ...] = (1, 2, 2, 1, 1)
CODE_SHAPE: tuple[int, int, int] = (WIDTHS[-1], RESOLUTION // 4, RESOLUTION // 4)
HEAD_WIDTH = 32
LAYER_NAMES: tuple[str, ...] = tuple(f"encoder.block{i + 1}" for i in range(len(WIDTHS)))
"""The selectable layers of every task network, shallow to deep."""
ENCODER_LAYER = "encoder"
"""The layer whose output is the code (the same tensor as ``encoder.block5``)."""


def init_seed(key: str) -> int:
    """A stable 31-bit seed from a string (CRC-32), so that seeds do not depend on task order."""
    import zlib

    return zlib.crc32(key.encode()) & 0x7FFFFFFF


class Block(nn.Sequential):
    """3x3 convolution (no bias), BatchNorm, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()


class Encoder(nn.Module):
    """32x32x3 → 32x32x16 → 16x16x32 → 8x8x64 → 8x8x64 → 8x8x8 (the code)."""

    def __init__(self) -> None:
        super().__init__()
        chans = (3, *WIDTHS)
        for i, stride in enumerate(STRIDES):
            self.add_module(f"block{i + 1}", Block(chans[i], chans[i + 1], stride))

    def forward(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """The code, or the output of block ``upto`` (1-based) when given."""
        for i, block in enumerate(self.children()):
            x = block(x)
            if upto is not None and i + 1 == upto:
                break
        return x


class PixelShuffle(nn.Module):
    """``nn.PixelShuffle`` as a view and one permute (several times faster on CPU, same result)."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        r = self.factor
        return x.view(n, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)


class DenseHead(nn.Module):
    """8x8 code → (N, channels, 32, 32): a 3x3 conv block and a 1x1 conv-ReLU at 8x8, a 1x1 conv to
    16 values per output channel, pixel shuffle x4 (each code cell paints its 4x4 patch)."""

    def __init__(self, channels: int, in_channels: int = CODE_SHAPE[0], width: int = HEAD_WIDTH) -> None:
        super().__init__()
        self.block1 = Block(in_channels, width)
        self.mix = nn.Conv2d(width, width, 1)
        self.relu = nn.ReLU()
        self.out = nn.Conv2d(width, channels * 16, 1)
        self.shuffle = PixelShuffle(4)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.out(self.relu(self.mix(self.block1(code)))))


class ImageHead(nn.Module):
    """Flattened code → 128 → ``channels`` (logits or values)."""

    def __init__(self, channels: int, in_features: int = CODE_SHAPE[0] * CODE_SHAPE[1] * CODE_SHAPE[2], hidden: int = 128) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(self.flatten(code))))


class TaskNet(nn.Module):
    """``head(encoder(x))``; the random-encoder control has an identity head (it outputs the code)."""

    def __init__(self, encoder: Encoder, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def make_head(task: Task) -> nn.Module:
    """A freshly initialised head for ``task`` (uses the current torch RNG)."""
    return DenseHead(task.channels) if task.dense else ImageHead(task.channels)


def task_net(task: Task | str, seed: int | None = None) -> TaskNet:
    """Encoder + head for ``task``, initialised from ``seed`` when given."""
    task = TASKS[task] if isinstance(task, str) else task
    if seed is not None:
        torch.manual_seed(seed)
    return TaskNet(Encoder(), make_head(task))


def encoder_net(seed: int | None = None) -> TaskNet:
    """An encoder with an identity head (the random-encoder control's architecture)."""
    if seed is not None:
        torch.manual_seed(seed)
    return TaskNet(Encoder(), nn.Identity())


def encoder_params() -> int:
    """Number of parameters of the shared encoder."""
    return sum(p.numel() for p in Encoder().parameters())
