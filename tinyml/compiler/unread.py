"""Drop the constant arrays a layer's chosen kernel never reads.

On DSP targets the widened-patch conv, the row16 fully connected and the 3x3 depthwise
algorithms read only their own layout (filter16 or packed: weights, folded bias and
requantization records in one array); the int8 filter, bias, multipliers, shifts and
requantization records the lowering also made would sit unread in flash. The lowering keeps
them until the weight encoding has run (the palette encoder rebuilds the DSP layouts from the
int8 filter and its decoder feeds the fallback paths), so this pass runs last: each params field
naming a dropped array becomes NULL. tests/engine/test_interface.py holds the C to it: on the
emitted data, the algorithm the C chooses finds every array it reads.
"""

from __future__ import annotations

import numpy as np

from .layers import ConstArray, Layer
from .ops_conv import KERNEL_READS

# Layer.extra key: the params fields whose arrays were dropped (model.c then needs a DSP build).
DROPPED = "dropped_arrays"


def drop_unread_arrays(layers: list[Layer], sizing_bound: bool = False) -> int:
    """Remove, in place, every const array of a layer that its chosen kernel does not read;
    returns the bytes removed. Palettized layers keep theirs (their decoder reads them).

    sizing_bound: the layers were lowered with every fast path forced (compiled_size's
    all_fast_paths, a bound for weights not trained yet). Trained weights may leave a layer on
    the fallback path, whose int8 arrays (plus a folded bias) can outweigh a small layer's DSP
    layout, so such a layer keeps a margin array of the difference: the bound stays the most
    constants the architecture can need."""
    removed = 0
    for layer in layers:
        reads = layer.extra.get(KERNEL_READS)
        if reads is None or "palette" in layer.extra:
            continue
        by_name = {array.name: array for array in layer.consts}
        dropped = [name for name, value in layer.fields.items()
                   if name not in reads and isinstance(value, str) and value in by_name]
        assert all(layer.fields.get(name) in by_name for name in reads), \
            f"layer {layer.op_index}: the chosen kernel reads {reads}, the lowering gave {layer.fields}"
        dropped_bytes = 0
        for name in dropped:
            array = by_name.pop(layer.fields[name])
            layer.consts.remove(array)
            dropped_bytes += array.nbytes
            layer.fields[name] = "NULL"
        removed += dropped_bytes
        if dropped:
            layer.extra[DROPPED] = dropped
        if sizing_bound and dropped:
            channels = int(layer.fields.get("output_c", layer.fields.get("output_depth", 0)))
            fallback = dropped_bytes + (0 if "bias_folded" in dropped else 4 * channels)
            kept = sum(by_name[layer.fields[name]].nbytes for name in reads)
            if fallback > kept:
                prefix = layer.fields[reads[0]].rsplit("_", 1)[0]
                layer.consts.append(ConstArray(f"{prefix}_fallback_margin", "int8_t",
                                               np.zeros(fallback - kept, np.int8)))
    return removed


def needs_dsp_build(layers: list[Layer]) -> bool:
    """Some layer holds only its DSP layout: its generic fallback would find NULL arrays."""
    return any(layer.extra.get(DROPPED) for layer in layers)
