"""firmware/platformio.ini read the way PlatformIO reads it: the one place that
says which files and flags each environment builds.

PlatformIO itself cannot run on this project's CI (its registry is unreachable),
so this module reproduces the parts of it the firmware depends on, from
platformio-core's project/config.py, fs.match_src_files and SCons' ParseFlags:

  * sections, `extends` (searched depth first, [env] last) and `${section.option}`,
    `${this.option}`, `${sysenv.NAME}` interpolation;
  * `build_src_filter`: +<glob>/-<glob> applied left to right over src_dir;
  * `build_flags`: -D/-I/-L/-l/-Wl,/-std= sorted into their SCons variables.

Two decisions of the firmware's own extra script (firmware/platformio_model.py)
live here too, so that script and the CI checks use the same code: which
compiler flags must also reach the linker (PlatformIO gives build_flags to the
compiler only), and which model files each backend builds.

Standard library only: platformio_model.py loads this file by path inside
PlatformIO's SCons, where the tinyml package is not installed.
"""

from __future__ import annotations

import configparser
import glob
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

# Options PlatformIO treats as lists (one item a line, or ", "-separated on one line).
MULTI_VALUE_OPTIONS = frozenset({"build_flags", "build_src_filter", "build_unflags", "extends", "lib_deps",
                                 "extra_scripts", "src_filter"})
# What PlatformIO compiles from a source filter's matches (piobuild.SRC_BUILD_EXT).
SOURCE_EXTENSIONS = (".c", ".cc", ".cpp", ".S", ".spp", ".SPP", ".sx", ".s", ".asm", ".ASM")
# Compiler flags that also decide how the image links (ABI, multilib, startup
# files): PlatformIO's build_flags reach only the compiler, so the extra script
# appends these to LINKFLAGS. Without them the link picks the soft-float
# libraries and the default crt0 (issue 13).
LINK_RELEVANT_PREFIXES = ("-mcpu=", "-mthumb", "-marm", "-mfloat-abi=", "-mfpu=", "-march=", "-mabi=",
                          "-misa-spec=", "--specs=", "-specs=", "-nostartfiles", "-nostdlib", "-nodefaultlibs",
                          "-static")
# Model files per backend, relative to TINYML_MODEL_DIR: what must exist, and what is compiled.
MODEL_FILES = {
    "engine": (("model.c", "model.h"), ("model.c",)),
    "tflm": (("model_data.cc", "model_data.h", "model_ops.h", "model_io.h"), ("model_data.cc",)),
}

# Options that change what is built but are not modelled here: an env using one is refused
# rather than checked against a wrong picture of the build.
UNREPRODUCED_OPTIONS = ("build_unflags", "lib_deps", "src_filter", "build_src_flags", "build_type")

_VARIABLE = re.compile(r"\$\{(?:([^.}()]+)\.)?([^}]+)\}")
_INLINE_COMMENT = re.compile(r"\s+;.*$")
_FILTER_ITEM = re.compile(r"([+-])<([^>]+)>")


class PlatformioIniError(ValueError):
    """platformio.ini names something that does not exist or cannot be resolved."""


@dataclass(frozen=True)
class BuildFlags:
    """build_flags sorted the way SCons' ParseFlags sorts them for PlatformIO."""

    defines: tuple[str, ...] = ()       # NAME or NAME=VALUE, as written after -D
    include_dirs: tuple[str, ...] = ()  # -I, relative to the project directory
    lib_dirs: tuple[str, ...] = ()      # -L
    libs: tuple[str, ...] = ()          # -l
    cflags: tuple[str, ...] = ()        # C only (-std=c..)
    cxxflags: tuple[str, ...] = ()      # C++ only (-std=c++..)
    ccflags: tuple[str, ...] = ()       # C and C++ compiler
    asflags: tuple[str, ...] = ()       # -Wa,
    linkflags: tuple[str, ...] = ()     # linker (-Wl,, and what the extra script forwards)


def parse_build_flags(lines: list[str]) -> BuildFlags:
    """SCons' ParseFlags for the flag kinds platformio.ini uses (shell-style quoting per line)."""
    sorted_flags: dict[str, list[str]] = {name: [] for name in BuildFlags.__dataclass_fields__}
    for line in lines:
        words = shlex.split(line)
        index = 0
        while index < len(words):
            word = words[index]
            index += 1
            if word.startswith("-D"):
                sorted_flags["defines"].append(word[2:] or words.pop(index))
            elif word.startswith("-I"):
                sorted_flags["include_dirs"].append(word[2:] or words.pop(index))
            elif word.startswith("-L"):
                sorted_flags["lib_dirs"].append(word[2:] or words.pop(index))
            elif word.startswith("-l"):
                sorted_flags["libs"].append(word[2:])
            elif word.startswith("-Wl,"):
                sorted_flags["linkflags"].append(word)
            elif word.startswith("-Wa,"):
                sorted_flags["asflags"].append(word)
            elif word.startswith("-std="):
                sorted_flags["cxxflags" if "++" in word else "cflags"].append(word)
            elif word in ("-include", "-imacros", "-isystem", "-iquote", "-idirafter"):
                sorted_flags["ccflags"].extend([word, words.pop(index)])
            elif not word.startswith("-"):
                raise PlatformioIniError(f"build_flags: '{word}' is not a flag (PlatformIO would link it as a library)")
            else:
                sorted_flags["ccflags"].append(word)
    return BuildFlags(**{name: tuple(values) for name, values in sorted_flags.items()})


def link_relevant_flags(ccflags: tuple[str, ...] | list[str]) -> list[str]:
    """The compiler flags the linker must see too (LINK_RELEVANT_PREFIXES), in order, once each."""
    forwarded: list[str] = []
    for flag in ccflags:
        if flag.startswith(LINK_RELEVANT_PREFIXES) and flag not in forwarded:
            forwarded.append(flag)
    return forwarded


def split_multi_value(value: str) -> list[str]:
    """platformio-core's parse_multi_values: lines (or ", " items), comments dropped."""
    items = value.split("\n") if "\n" in value else value.split(", ")
    result = []
    for item in items:
        item = item.strip()
        if not item or item.startswith((";", "#")):
            continue
        result.append(_INLINE_COMMENT.sub("", item).strip())
    return result


def match_sources(src_dir: Path, src_filter: str) -> list[str]:
    """fs.match_src_files: each +<glob> adds, each -<glob> removes, left to right;
    a directory stands for every file below it. Paths relative to src_dir, sorted."""
    src_dir = Path(src_dir)
    result: set[str] = set()
    for action, pattern in _FILTER_ITEM.findall(src_filter):
        candidates: set[str] = set()
        for item in glob.glob(os.path.join(glob.escape(str(src_dir)), pattern), recursive=True):
            paths = [item] if not os.path.isdir(item) else [
                os.path.join(root, name) for root, _, names in os.walk(item) for name in names]
            candidates.update(os.path.relpath(path, src_dir) for path in paths)
        if action == "+":
            result |= candidates
        else:
            result -= candidates
    return sorted(path for path in result if path.endswith(SOURCE_EXTENSIONS))


@dataclass(frozen=True)
class PioEnv:
    """One [env:NAME] fully resolved: what PlatformIO compiles and with which flags."""

    name: str
    platform: str                # e.g. "ststm32@17.6.0"
    board: str
    framework: str               # "" for a bare-metal env
    backend: str                 # custom_tinyml_backend: engine or tflm
    protocol: str                # custom_tinyml_protocol: binary or mlperf
    sources: tuple[str, ...]     # relative to src_dir
    flags: BuildFlags
    ldscript: str | None         # board_build.ldscript, relative to the project directory
    src_filter: str = field(repr=False, default="")

    @property
    def platform_name(self) -> str:
        return self.platform.split("@", 1)[0]

    @property
    def model_required_files(self) -> tuple[str, ...]:
        return MODEL_FILES[self.backend][0]

    @property
    def model_sources(self) -> tuple[str, ...]:
        return MODEL_FILES[self.backend][1]


class PlatformioIni:
    """A platformio.ini with PlatformIO's option lookup and interpolation."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.project_dir = self.path.parent
        parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None, strict=True)
        try:
            with self.path.open() as handle:
                parser.read_file(handle)
        except (OSError, configparser.Error) as exc:
            raise PlatformioIniError(f"cannot read {self.path}: {exc}") from exc
        self._parser = parser

    def env_names(self) -> list[str]:
        return [section[4:] for section in self._parser.sections() if section.startswith("env:")]

    def _walk(self, section: str) -> list[str]:
        """Sections searched for an option, in PlatformIO's order (walk_options)."""
        queue = ["env", section] if section.startswith("env:") else [section]
        order: list[str] = []
        while queue:
            current = queue.pop()
            if len(order) > 64:
                raise PlatformioIniError(f"{self.path.name}: [{section}] extends in a cycle")
            order.append(current)
            if self._parser.has_section(current) and self._parser.has_option(current, "extends"):
                parents = split_multi_value(self._parser.get(current, "extends"))
                for parent in parents:
                    if not self._parser.has_section(parent):
                        raise PlatformioIniError(f"{self.path.name}: [{current}] extends unknown section [{parent}]")
                queue.extend(parents)
        return order

    def get(self, section: str, option: str, default: str | None = None, _depth: int = 0) -> str:
        """The option's value with ${...} expanded; default (or an error) when no section has it."""
        if _depth > 32:
            raise PlatformioIniError(f"{self.path.name}: ${{{section}.{option}}} refers to itself")
        if section != "env" and not self._parser.has_section(section):
            raise PlatformioIniError(f"{self.path.name}: no section [{section}]")
        for candidate in self._walk(section):
            if self._parser.has_section(candidate) and self._parser.has_option(candidate, option):
                raw = self._parser.get(candidate, option)
                break
        else:
            if default is None:
                raise PlatformioIniError(f"{self.path.name}: [{section}] has no option '{option}'")
            raw = default

        def expand(match: re.Match[str]) -> str:
            ref_section, ref_option = match.group(1), match.group(2)
            if ref_section is None:
                return str(self.project_dir) if ref_option == "PROJECT_DIR" else match.group(0)  # SCons variable
            if ref_section == "sysenv":
                return os.environ.get(ref_option, "")
            if ref_section == "this":
                if ref_option == "__env__":
                    return section[4:]
                ref_section = section
            value = self.get(ref_section, ref_option, _depth=_depth + 1)
            return "\n".join(split_multi_value(value)) if ref_option in MULTI_VALUE_OPTIONS else value

        return _VARIABLE.sub(expand, raw)

    def get_list(self, section: str, option: str) -> list[str]:
        return split_multi_value(self.get(section, option, default=""))

    def env(self, name: str) -> PioEnv:
        section = f"env:{name}"
        if not self._parser.has_section(section):
            raise PlatformioIniError(f"{self.path.name} has no environment '{name}' "
                                     f"(known: {', '.join(self.env_names())})")
        for option in UNREPRODUCED_OPTIONS:
            if self.get(section, option, default=""):
                raise PlatformioIniError(f"[{section}] uses {option}, which pio_envs does not reproduce: "
                                         "extend host/pio_envs.py before relying on it")
        src_dir = self.project_dir / self.get("platformio", "src_dir", default="src")
        src_filter = " ".join(self.get_list(section, "build_src_filter"))
        flags = parse_build_flags(self.get_list(section, "build_flags"))
        # platformio_model.py's link forwarding, applied here so every user sees the same flags.
        flags = BuildFlags(**{**flags.__dict__, "linkflags": flags.linkflags + tuple(
            flag for flag in link_relevant_flags(flags.ccflags) if flag not in flags.linkflags)})
        backend = self.get(section, "custom_tinyml_backend", default="engine")
        if backend not in MODEL_FILES:
            raise PlatformioIniError(f"[{section}] custom_tinyml_backend = {backend}: engine or tflm")
        return PioEnv(
            name=name,
            platform=self.get(section, "platform", default=""),
            board=self.get(section, "board", default=""),
            framework=self.get(section, "framework", default=""),
            backend=backend,
            protocol=self.get(section, "custom_tinyml_protocol", default="binary"),
            sources=tuple(match_sources(src_dir, src_filter)),
            flags=flags,
            ldscript=self.get(section, "board_build.ldscript", default="") or None,
            src_filter=src_filter,
        )


def read_platformio_ini(path: Path) -> PlatformioIni:
    return PlatformioIni(path)


@dataclass(frozen=True)
class PlatformBuild:
    """What a PlatformIO platform's builder adds around an environment's own flags."""

    toolchain_prefix: str  # e.g. "arm-none-eabi-": gcc, g++, objcopy, size
    before: BuildFlags     # the builder's defaults and the board's extra_flags, ahead of build_flags
    libs: tuple[str, ...]  # linked after the objects


# platform-ststm32 17.6.0 without a framework: builder/frameworks/_bare.py gives
# -Os -ffunction-sections -fdata-sections -Wall -mthumb -mcpu=<build.cpu> and
# F_CPU to the compiler, -Os -Wl,--gc-sections,--relax -mthumb -mcpu to the
# linker and links c gcc m stdc++; platformio-core adds the board's
# build.extra_flags and PLATFORMIO. Board values from its boards/*.json.
STM32_BOARDS = {
    "nucleo_f446re": ("cortex-m4", "180000000L", ("STM32F4", "STM32F446xx")),
    "nucleo_h743zi": ("cortex-m7", "400000000L", ("STM32H7", "STM32H7xx", "STM32H743xx")),
    "genericSTM32F405RG": ("cortex-m4", "168000000L", ("STM32F4", "STM32F405xx", "STM32F4xx")),
}
PLATFORMIO_VERSION_MACRO = "PLATFORMIO=60118"


def platform_build(env: PioEnv) -> PlatformBuild:
    """The framework-less ststm32 builder for env's board (the only platform whose
    toolchain this project's machines have; ESP32 envs need espressif's)."""
    if env.platform_name != "ststm32" or env.framework:
        raise PlatformioIniError(f"[env:{env.name}]: only framework-less ststm32 builds are reproduced here, "
                                 f"not {env.platform_name} {env.framework}".rstrip())
    if env.board not in STM32_BOARDS:
        raise PlatformioIniError(f"[env:{env.name}]: board {env.board} is not in pio_envs.STM32_BOARDS")
    cpu, f_cpu, extra_defines = STM32_BOARDS[env.board]
    before = BuildFlags(
        defines=(f"F_CPU={f_cpu}", PLATFORMIO_VERSION_MACRO, *extra_defines),
        ccflags=("-Os", "-ffunction-sections", "-fdata-sections", "-Wall", "-mthumb", f"-mcpu={cpu}"),
        asflags=("-mthumb", f"-mcpu={cpu}"),
        linkflags=("-Os", "-Wl,--gc-sections,--relax", "-mthumb", f"-mcpu={cpu}"),
    )
    return PlatformBuild("arm-none-eabi-", before, ("c", "gcc", "m", "stdc++"))


@dataclass(frozen=True)
class BuildStep:
    source: str          # relative to the project directory ("" for the link)
    argv: tuple[str, ...]


def build_steps(env: PioEnv, project_dir: Path, model_dir: Path, build_dir: Path) -> tuple[list[BuildStep], BuildStep]:
    """The compile and link command lines PlatformIO would run for env (SCons' CCCOM
    and LINKCOM with the variables above), the model from model_dir as
    platformio_model.py adds it. Objects and firmware.elf go to build_dir."""
    platform = platform_build(env)
    project_dir, model_dir, build_dir = Path(project_dir), Path(model_dir), Path(build_dir)
    missing = [name for name in env.model_required_files if not (model_dir / name).is_file()]
    if missing:
        raise PlatformioIniError(f"{model_dir} lacks {', '.join(missing)} for the {env.backend} backend")
    includes = [*(str(project_dir / d) for d in env.flags.include_dirs), str(model_dir)]
    defines = [*platform.before.defines, *env.flags.defines]
    sources = [(str(project_dir / s), s) for s in env.sources] + \
              [(str(model_dir / s), f"<model>/{s}") for s in env.model_sources]
    compiles = []
    for path, name in sources:
        is_cxx = path.endswith((".cc", ".cpp"))
        compiler = platform.toolchain_prefix + ("g++" if is_cxx else "gcc")
        language = env.flags.cxxflags if is_cxx else env.flags.cflags
        obj = build_dir / (name.replace("<model>/", "model/").replace("/", "__") + ".o")
        argv = [compiler, "-o", str(obj), "-c", *language, *platform.before.ccflags, *env.flags.ccflags,
                *(f"-D{d}" for d in defines), *(f"-I{i}" for i in includes), path]
        compiles.append(BuildStep(name, tuple(argv)))
    linkflags = list(env.flags.linkflags) + list(platform.before.linkflags)
    if env.ldscript:
        linkflags = ["-T", str(project_dir / env.ldscript), *linkflags]
    objects = [step.argv[2] for step in compiles]
    link = [platform.toolchain_prefix + "gcc", "-o", str(build_dir / "firmware.elf"), *linkflags, *objects,
            *(f"-L{project_dir / d}" for d in env.flags.lib_dirs),
            "-Wl,--start-group", *(f"-l{lib}" for lib in (*env.flags.libs, *platform.libs)), "-Wl,--end-group"]
    return compiles, BuildStep("", tuple(link))
