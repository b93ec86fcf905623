"""Turning the model's input into a 5D clip batch, and frame bookkeeping in time.

Two input forms reach the model (DESIGN.md section 3):

* ``seqL=None``: ``sils`` ``[n, s, h, w]``, n clips of the same length s.
* packed: ``sils`` ``[1, sum(T_b), h, w]`` with ``seqL`` ``[B]`` the lengths
  ``T_b``, as OpenGait's collate function concatenates whole test sequences.

Both become ``[n, 1, s, h, w]``; the packed form is padded to the longest sequence
with zero frames and comes with a frame mask ``[B, s]`` (True = real frame), built
with one gather and no Python loop over sequences.

The paper's short-sequence rule (official code, before the first conv): a
sequence of 1 frame is repeated 3 times, one of 2 frames twice (tiled: a b a b),
so the temporal kernel of 3 and FTA's pooling window of 3 always fit.
"""
from __future__ import annotations

import torch


def check_silhouettes(sils: torch.Tensor, input_height: int) -> None:
    """Raise ValueError unless ``sils`` is ``[n, s, input_height, w]``."""
    if sils.dim() != 4 or sils.shape[2] != input_height:
        raise ValueError(
            f"expected silhouettes [n, s, {input_height}, w], got {list(sils.shape)} "
            f"(model built for input_height={input_height})"
        )


def short_sequence_repeats(lengths: torch.Tensor) -> torch.Tensor:
    """How often each length is tiled: 3 for 1 frame, 2 for 2 frames, else 1."""
    return torch.where(lengths == 1, 3, torch.where(lengths == 2, 2, 1))


def prepare_sequences(sils: torch.Tensor, seqL: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Silhouettes ``[n, s, h, w]`` (+ optional lengths) -> ``([n', 1, s', h, w], mask)``.

    Without ``seqL`` the mask is None and n' = n. With ``seqL`` (``n`` must be 1 and
    ``sum(seqL) == s``) n' = B, s' = the longest sequence after the short-sequence
    rule, padded frames are zero and ``mask`` ``[B, s']`` marks the real ones.
    """
    if seqL is None:
        frames = sils.shape[1]
        if frames < 3:
            sils = sils.repeat(1, 3 if frames == 1 else 2, 1, 1)
        return sils.unsqueeze(1), None
    lengths = torch.as_tensor(seqL, dtype=torch.long, device=sils.device).reshape(-1)
    if sils.shape[0] != 1:
        raise ValueError(f"packed input needs sils [1, sum(seqL), h, w], got batch size {sils.shape[0]}")
    if bool((lengths < 1).any()) or int(lengths.sum()) != sils.shape[1]:
        raise ValueError(
            f"seqL {lengths.tolist()} must be positive lengths summing to the {sils.shape[1]} frames given"
        )
    padded_lengths = lengths * short_sequence_repeats(lengths)
    steps = torch.arange(int(padded_lengths.max()), device=sils.device)
    starts = torch.cumsum(lengths, 0) - lengths
    source = starts[:, None] + steps[None, :] % lengths[:, None]
    mask = steps[None, :] < padded_lengths[:, None]
    clips = sils[0][source]
    clips = clips.masked_fill(~mask[:, :, None, None], 0.0)
    return clips.unsqueeze(1), mask


def fta_frame_count(frames: torch.Tensor | int) -> torch.Tensor | int:
    """Frames left after FTA's pooling (kernel 3, stride 3): ``floor((T - 3) / 3) + 1``."""
    return (frames - 3) // 3 + 1


def fta_mask(mask: torch.Tensor) -> torch.Tensor:
    """Frame mask ``[n, s]`` before FTA -> frame mask ``[n, s']`` after it."""
    kept = fta_frame_count(mask.sum(dim=1))
    steps = torch.arange(fta_frame_count(mask.shape[1]), device=mask.device)
    return steps[None, :] < kept[:, None]
