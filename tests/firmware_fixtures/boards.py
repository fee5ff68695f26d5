"""The fixture boards live in tinyml.testing.fixture_boards (the benchmarks use them too)."""

from tinyml.testing.fixture_boards import board_link, fixture_image, large_input_fixture_image, running_board

__all__ = ["board_link", "fixture_image", "large_input_fixture_image", "running_board"]
