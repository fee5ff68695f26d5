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


def test_fraction_chart_starts_its_axis_where_differences_show(tmp_path):
    from tinyml.plots import fraction_axis_start, plot_fractions

    # Three values near 1.0: the axis starts 2 points below the smallest, not at 0.
    assert abs(fraction_axis_start([0.9889, 0.9861, 1.0]) - 0.9661) < 1e-12
    # A wide spread keeps half of it below the smallest; never below 0.
    assert abs(fraction_axis_start([0.5, 0.9]) - 0.3) < 1e-12
    assert fraction_axis_start([0.01, 1.0]) == 0.0
    plot_fractions(["a", "b", "c"], [0.9889, 0.9861, 1.0], tmp_path / "f.png", "t")
    assert Image.open(tmp_path / "f.png").size[0] > 0


def test_histogram_of_large_latencies_renders(tmp_path):
    from tinyml.plots import plot_histogram

    values = np.array([541_234, 541_240, 541_300, 542_000])
    plot_histogram(values, tmp_path / "h.png", "t", "latency (instructions)", {"p50": 541_270.0})
    assert Image.open(tmp_path / "h.png").size[0] > 0


def test_sweep_plot_labels_never_overlap(tmp_path):
    from tinyml.plots import plot_sweep

    # Crowded: near-equal sizes and accuracies, as a family of students gives.
    names = [f"w{w:.2f}-d{d}" for w, d in ((1, 3), (2, 3), (3, 3), (4, 3), (4, 4), (6, 4), (8, 4), (8, 5))]
    points = [(1000 * (1 + 0.05 * i), 0.98 + 0.0004 * (i % 3), name) for i, name in enumerate(names)]
    panels = [{"xlabel": "bytes", "ylabel": "accuracy", "points": points[:6],
               "off_budget": [(x, name) for x, _, name in points[6:]], "budgets": {"--max-flash": 1100}},
              {"xlabel": "MACs", "ylabel": "accuracy", "points": points, "budgets": {}}]
    path, boxes = plot_sweep(panels, tmp_path / "sweep.png", "crowded", highlight=names[2])
    assert path.is_file() and Image.open(path).size[0] > 0
    for panel_boxes in boxes:
        assert len(panel_boxes) == 8
        for i, box in enumerate(panel_boxes):
            assert not any(box.overlaps(other) for other in panel_boxes[i + 1:])
