"""Static memory plan: which arena offset each activation tensor and scratch buffer gets.

Tensors that share storage form one buffer: a RESHAPE output is its input, and
an elementwise op may write over its input when that input dies there. The
model input is read in place from the caller's buffer and the model output is
written straight into the caller's buffer, so neither takes arena space.
The rest is placed greedily, largest first, at the lowest aligned offset that
does not collide with a buffer whose lifetime overlaps (as TFLM's greedy planner).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import TinymlError
from ..tflite_graph import Graph
from .layers import Layer

ALIGNMENT = 4


@dataclass
class Buffer:
    id: int
    size: int
    first: int                     # first layer that writes it (-1: valid before layer 0)
    last: int                      # last layer that reads it (len(layers): read after the last layer)
    tensors: list[int] = field(default_factory=list)
    storage: str = "arena"         # "arena", "input" (caller's input), "output" (caller's output)
    offset: int = 0
    scratch_of: int | None = None  # layer index for a scratch buffer
    name: str = ""


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    arena_bytes: int
    tensor_buffer: dict[int, int]  # tensor index -> buffer id
    scratch_buffer: dict[int, int]  # layer index -> buffer id

    def tensor_location(self, tensor: int) -> tuple[str, int]:
        buffer = self.buffers[self.tensor_buffer[tensor]]
        return buffer.storage, buffer.offset

    def scratch_location(self, layer: int) -> int:
        return self.buffers[self.scratch_buffer[layer]].offset


def _align(value: int) -> int:
    return (value + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan_memory(graph: Graph, layers: list[Layer]) -> MemoryPlan:
    model_in, model_out = graph.inputs[0], graph.outputs[0]
    if model_in == model_out:
        raise TinymlError("model output is its input: nothing to compile")
    parent: dict[int, int] = {}

    def find(t: int) -> int:
        while parent.setdefault(t, t) != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    def union(a: int, b: int) -> None:
        parent[find(b)] = find(a)

    # Last reader of every tensor, to know whether an input dies at an in-place op.
    last_read: dict[int, int] = {}
    for i, layer in enumerate(layers):
        for t in layer.inputs:
            last_read[t] = i
    last_read[model_out] = len(layers)

    def role(root: int) -> set[str]:
        members = [t for t in list(parent) if find(t) == root]
        return {"input" for t in members if t == model_in} | {"output" for t in members if t == model_out}

    for i, layer in enumerate(layers):
        for t in (*layer.inputs, *layer.outputs):
            find(t)
        if layer.alias:
            src, dst = layer.inputs[0], layer.outputs[0]
            roles = role(find(src)) | role(find(dst))
            if roles == {"input", "output"}:
                raise TinymlError("model output is a reshape of its input: nothing to compile")
            union(src, dst)
        elif layer.in_place:
            src, dst = layer.inputs[0], layer.outputs[0]
            src_roles = role(find(src))
            dies_here = last_read.get(src, -1) == i and src not in layer.inputs[1:]
            if dies_here and "input" not in src_roles and not (src_roles and role(find(dst))):
                # Same storage only if no later reader of src (or of anything aliased to it).
                group = [t for t in list(parent) if find(t) == find(src)]
                if all(last_read.get(t, -1) <= i for t in group):
                    union(src, dst)

    groups: dict[int, list[int]] = {}
    for t in list(parent):
        groups.setdefault(find(t), []).append(t)
    producer: dict[int, int] = {}
    for i, layer in enumerate(layers):
        for t in layer.outputs:
            producer.setdefault(t, i)

    buffers: list[Buffer] = []
    tensor_buffer: dict[int, int] = {}
    for members in groups.values():
        members.sort()
        size = max(graph.tensors[t].nbytes for t in members)
        first = min((producer.get(t, -1) if t != model_in else -1) for t in members)
        last = max(last_read.get(t, first) for t in members)
        storage = "input" if model_in in members else "output" if model_out in members else "arena"
        if storage == "output" and size > graph.tensors[model_out].nbytes:
            storage = "arena"  # cannot happen for reshape/elementwise, kept as a guard
        buffer = Buffer(len(buffers), size, first, last, members, storage, name=graph.tensors[members[0]].name)
        buffers.append(buffer)
        for t in members:
            tensor_buffer[t] = buffer.id
    scratch_buffer: dict[int, int] = {}
    for i, layer in enumerate(layers):
        if layer.scratch_bytes:
            buffer = Buffer(len(buffers), layer.scratch_bytes, i, i, [], "arena", scratch_of=i,
                            name=f"scratch of layer {i}")
            buffers.append(buffer)
            scratch_buffer[i] = buffer.id

    placed: list[Buffer] = []
    arena_bytes = 0
    for buffer in sorted((b for b in buffers if b.storage == "arena"), key=lambda b: (-b.size, b.first, b.id)):
        live = sorted((b for b in placed if b.first <= buffer.last and buffer.first <= b.last),
                      key=lambda b: b.offset)
        offset = 0
        for other in live:
            if offset + buffer.size <= other.offset:
                break
            offset = max(offset, _align(other.offset + other.size))
        buffer.offset = offset
        placed.append(buffer)
        arena_bytes = max(arena_bytes, offset + buffer.size)
    return MemoryPlan(buffers, _align(arena_bytes), tensor_buffer, scratch_buffer)
