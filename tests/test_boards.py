import pytest

from tinyml.boards import list_boards, load_board
from tinyml.errors import TinymlError


def test_every_profile_loads_with_budgets_inside_the_chip():
    boards = {b.name: b for b in list_boards()}
    for required in ("stm32f405", "esp32dev", "esp32s3", "esp32c3", "nucleo_f446re", "nucleo_h743zi"):
        assert required in boards
    for board in boards.values():
        assert 0 < board.model_flash_budget < board.flash_bytes
        assert 0 < board.model_ram_budget < board.ram_bytes
        assert board.latency_unit in ("cycles", "instructions")
        assert board.path is not None and board.path.stem == board.name


def test_emulated_board_is_the_stm32f405_of_the_issue():
    board = load_board("stm32f405")
    assert board.flash_bytes == 1024 * 1024 and board.ram_bytes == 192 * 1024
    assert board.clock_hz == 168_000_000 and board.latency_unit == "instructions"
    assert board.emulator["machine"] == "netduinoplus2"


def test_cortex_m7_board_present():
    assert any(b.core == "cortex-m7" for b in list_boards())


def test_unknown_board_names_the_known_ones():
    with pytest.raises(TinymlError, match="unknown board 'nope'.*stm32f405"):
        load_board("nope")


def test_board_profile_from_path_and_missing_keys(tmp_path):
    good = tmp_path / "mine.toml"
    good.write_text('name="mine"\nmcu="X"\ncore="cortex-m0"\nclock_hz=48000000\nflash_bytes=65536\nram_bytes=8192\n')
    assert load_board(str(good)).name == "mine"
    bad = tmp_path / "bad.toml"
    bad.write_text('name="bad"\nmcu="X"\n')
    with pytest.raises(TinymlError, match="missing core"):
        load_board(str(bad))


def test_rv32_virt_has_the_esp32c3_budgets_its_profile_promises():
    # rv32_virt stands in for the ESP32-C3 in CI: a model that fits one must fit the other.
    stand_in, c3 = load_board("rv32_virt"), load_board("esp32c3")
    assert (stand_in.core, stand_in.clock_hz, stand_in.compile_target) == (c3.core, c3.clock_hz, c3.compile_target)
    assert stand_in.model_flash_budget == c3.model_flash_budget
    assert stand_in.model_ram_budget == c3.model_ram_budget
