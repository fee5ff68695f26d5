"""The compiler's shape-folding pass (tinyml/compiler/fold.py) on small hand-made
graphs: each foldable op against what TensorFlow computes, and what stays."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler.fold import fold_static_shapes
from tinyml.errors import TinymlError
from tinyml.tflite_graph import Graph, Operator, Tensor


def _tensor(index: int, shape, dtype=np.int32, data=None) -> Tensor:
    empty = np.zeros(0, np.float32)
    return Tensor(index, f"t{index}", tuple(shape), np.dtype(dtype), empty, np.zeros(0, np.int64), 0,
                  None if data is None else np.asarray(data, dtype=dtype))


def _graph(tensors: list[Tensor], operators: list[Operator]) -> Graph:
    # the graph output is an int8 activation; a shape tensor that is itself an output would stay
    output = max(t.index for t in tensors if t.dtype == np.int8)
    return Graph(tensors, operators, [0], [output], "0" * 64, 0, 3, "")


@pytest.mark.parametrize("begin, end, strides, options", [
    ([1], [3], [1], {}),
    ([-1], [0], [1], {"shrink_axis_mask": 1}),
    ([0], [0], [1], {"end_mask": 1}),
    ([3], [0], [-1], {"begin_mask": 0}),
    ([0], [4], [2], {}),
    ([-3], [-1], [1], {}),
])
def test_strided_slice_of_a_shape_matches_tensorflow(begin, end, strides, options):
    import tensorflow as tf

    shape = (1, 6, 5, 4)
    tensors = [_tensor(0, shape, np.int8), _tensor(1, (4,)), _tensor(2, (1,), data=begin),
               _tensor(3, (1,), data=end), _tensor(4, (1,), data=strides), _tensor(5, ())]
    ops = [Operator(0, "SHAPE", [0], [1], {}), Operator(1, "STRIDED_SLICE", [1, 2, 3, 4], [5], dict(options))]
    folded = fold_static_shapes(_graph(tensors, ops))
    assert folded.operators == []
    expected = tf.strided_slice(tf.constant(shape, tf.int32), begin, end, strides,
                                begin_mask=options.get("begin_mask", 0), end_mask=options.get("end_mask", 0),
                                shrink_axis_mask=options.get("shrink_axis_mask", 0)).numpy()
    assert np.array_equal(folded.tensors[5].data.reshape(expected.shape), expected)


def test_flatten_pattern_folds_into_a_reshape_with_a_constant_shape():
    # SHAPE -> STRIDED_SLICE [0:1] -> PACK with -1 -> RESHAPE, as Keras' Flatten converts
    tensors = [_tensor(0, (1, 3, 3, 2), np.int8), _tensor(1, (4,)), _tensor(2, (1,), data=[0]),
               _tensor(3, (1,), data=[1]), _tensor(4, ()), _tensor(5, (), data=-1), _tensor(6, (2,)),
               _tensor(7, (1, 18), np.int8)]
    ops = [Operator(0, "SHAPE", [0], [1], {}),
           Operator(1, "STRIDED_SLICE", [1, 2, 3, 3], [4], {"shrink_axis_mask": 1}),
           Operator(2, "PACK", [4, 5], [6], {"axis": 0}),
           Operator(3, "RESHAPE", [0, 6], [7], {})]
    folded = fold_static_shapes(_graph(tensors, ops))
    assert [op.opcode for op in folded.operators] == ["RESHAPE"] and folded.operators[0].index == 3
    assert folded.tensors[6].data.tolist() == [1, -1]
    assert folded.tensors[7].data is None  # the int8 activation is never folded


def test_gather_reduce_prod_concatenation_and_arithmetic():
    tensors = [_tensor(0, (1, 4, 3, 2), np.int8), _tensor(1, (4,)), _tensor(2, (2,), data=[1, 2]),
               _tensor(3, (2,)), _tensor(4, (1,), data=[0]), _tensor(5, ()), _tensor(6, (1,), data=[2]),
               _tensor(7, (2,)), _tensor(8, (), data=3), _tensor(9, (2,))]
    ops = [Operator(0, "SHAPE", [0], [1], {}),
           Operator(1, "GATHER", [1, 2], [3], {"axis": 0}),              # [4, 3]
           Operator(2, "REDUCE_PROD", [3, 4], [5], {}),                  # 12
           Operator(3, "CONCATENATION", [5, 6], [7], {"axis": 0}),       # [12, 2]
           Operator(4, "MUL", [7, 8], [9], {})]                         # [36, 6]
    folded = fold_static_shapes(_graph(tensors, ops))
    assert folded.tensors[9].data.tolist() == [36, 6]


def test_what_cannot_be_evaluated_stays_for_the_lowering():
    # SHAPE of a tensor whose shape is unknown (-1) stays, and so does everything after it
    tensors = [_tensor(0, (-1, 4), np.int8), _tensor(1, (2,)), _tensor(2, (-1, 4), np.int8)]
    ops = [Operator(0, "SHAPE", [0], [1], {}), Operator(1, "RESHAPE", [0, 1], [2], {})]
    folded = fold_static_shapes(_graph(tensors, ops))
    assert [op.opcode for op in folded.operators] == ["SHAPE", "RESHAPE"]


def test_a_folded_shape_that_contradicts_the_declared_output_is_an_error():
    tensors = [_tensor(0, (1, 6), np.int8), _tensor(1, (2,), data=[2, 3]), _tensor(2, (1, 6), np.int8)]
    ops = [Operator(0, "RESHAPE", [0, 1], [2], {})]
    with pytest.raises(TinymlError, match=r"^RESHAPE at operator 0: the model sizes tensors at run time"):
        fold_static_shapes(_graph(tensors, ops))
