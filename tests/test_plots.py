import numpy as np
from PIL import Image

from tinyml.plots import MAX_FIGURE_INCHES, confusion_matrix, plot_confusion


def test_confusion_matrix_counts_pairs():
    matrix = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_confusion_plot_stays_bounded_with_many_classes(tmp_path):
    # A 640-output model (an autoencoder) once made a 290-inch figure and exhausted memory.
    n = 640
    plot_confusion(confusion_matrix(np.arange(n), np.arange(n), n), [str(i) for i in range(n)], tmp_path / "c.png", "t")
    width, height = Image.open(tmp_path / "c.png").size
    assert width <= MAX_FIGURE_INCHES * 110 + 1 and height <= MAX_FIGURE_INCHES * 110 + 1
