"""The C side of palettized layers (compiler/palette.py): the tm_palette_t of a layer, its
decode call before the kernel, and the params fields that point at the decoded weights."""

from __future__ import annotations

from .layers import Layer
from .palette import SCRATCH_PLACEHOLDER

# params field -> element type the kernel reads through it
_FIELD_TYPES = {"filter": "int8_t", "filter16": "int32_t", "packed": "int32_t"}


def _decoded_offset(layer: Layer, scratch_offset: int) -> int:
    return scratch_offset + int(layer.extra["palette_offset"])


def _conv_blocks(layer: Layer) -> bool:
    return layer.opcode == "CONV_2D" and bool(layer.extra["palette"]["chunk"])


def palette_struct(index: int, layer: Layer) -> str:
    fields = ",\n".join(f"    .{name} = {value}" for name, value in layer.extra["palette"].items())
    guard = ""
    if _conv_blocks(layer):   # its scratch holds a block of filter16, not the int8 filter other builds decode
        guard = (f"#if !TM_DSP_AVAILABLE\n#error \"layer {index}: palettized CONV_2D in blocks of filter16 channels "
                 f"needs the DSP build of its target\"\n#endif\n")
    return f"{guard}static const tm_palette_t l{index}_palette = {{\n{fields},\n}};\n"


def palette_fields(layer: Layer, scratch_offset: int) -> dict:
    """LAYER's params fields with the decoded weights' arena address (a C address constant)."""
    offset = _decoded_offset(layer, scratch_offset)
    return {name: (f"(const {_FIELD_TYPES[name]} *)(const void *)((int8_t *)tinyml_arena + {offset})"
                   if value == SCRATCH_PLACEHOLDER else value)
            for name, value in layer.fields.items()}


def palette_call(index: int, layer: Layer, scratch_offset: int, args: list[str]) -> str:
    """The kernel call of a palettized layer: decode, then the kernel; a fully connected
    layer decoded in blocks goes through tm_palette_fully_connected_s8."""
    offset = _decoded_offset(layer, scratch_offset)
    scratch = "arena" if offset == 0 else f"arena + {offset}"
    if _conv_blocks(layer):   # args: params, input, output, the kernel's scratch
        return (f"tm_palette_conv_2d_s8({args[0]}, &l{index}_palette, {args[1]}, {args[2]}, {args[3]}, "
                f"(int32_t *)(void *)({scratch}));\n")
    if layer.extra["palette"]["chunk"]:
        return f"tm_palette_fully_connected_s8({args[0]}, &l{index}_palette, {args[1]}, {args[2]}, {scratch});\n"
    return f"tm_palette_decode(&l{index}_palette, {scratch});\n    {layer.kernel}({', '.join(args)});\n"
