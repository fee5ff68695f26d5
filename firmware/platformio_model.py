"""PlatformIO extra script (pre:) of firmware/platformio.ini: brings the model
and, for the `_tflm` environments, the TFLite-Micro tree into the build.

  TINYML_MODEL_DIR  `tinyml compile` output (model.c, model.h) for the engine,
                    `tinyml emit` output (model_data.cc, model_ops.h, model_io.h) for tflm
  TINYML_TFLM_DIR   a TFLite-Micro source tree (tflm environments only):
                    create_tflm_tree.py output with CMSIS-NN for Cortex-M, or an
                    esp-tflite-micro checkout with esp-nn/ inside for ESP32.
                    A file TINYML_TFLM_PIN in it holds the commit or version it
                    was made from; it must match platformio.ini's [tinyml] pin.

It also hands the linker the compiler flags that decide the ABI and startup
files (-mcpu, -mfloat-abi, -mfpu, --specs, -nostartfiles...): PlatformIO gives
build_flags to the compiler only. Which flags those are, and which model files
each backend needs, is decided by host/pio_envs.py, the module CI checks the
environments with (tests/test_platformio_envs.py).

Runs inside PlatformIO's SCons (Import("env")); not importable elsewhere.
"""

import importlib.util
import os
import re
import sys

Import("env")  # noqa: F821  (SCons built-in)

config = env.GetProjectConfig()  # noqa: F821
pio_env = env["PIOENV"]  # noqa: F821
backend = config.get(f"env:{pio_env}", "custom_tinyml_backend", "engine")
protocol = config.get(f"env:{pio_env}", "custom_tinyml_protocol", "binary")
project_dir = env.subst("$PROJECT_DIR")  # noqa: F821


def fail(message):
    sys.stderr.write(f"tinyml: {message}\n")
    env.Exit(1)  # noqa: F821


def load_pio_envs():
    """host/pio_envs.py by path: the tinyml package is not installed in PlatformIO's Python."""
    path = os.path.join(project_dir, os.pardir, "host", "pio_envs.py")
    spec = importlib.util.spec_from_file_location("tinyml_pio_envs", path)
    if spec is None or not os.path.isfile(path):
        fail(f"{path} is missing: build from a tinyml checkout (firmware/ beside host/)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


pio_envs = load_pio_envs()
try:
    resolved_env = pio_envs.read_platformio_ini(os.path.join(project_dir, "platformio.ini")).env(pio_env)
except pio_envs.PlatformioIniError as exc:
    fail(str(exc))
env.Append(LINKFLAGS=[f for f in resolved_env.flags.linkflags if not f.startswith("-Wl,")])  # noqa: F821


def required_dir(variable, what):
    path = os.environ.get(variable, "")
    if not path:
        fail(f"set {variable} to {what}")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(path):
        fail(f"{variable}={path} is not a directory")
    return path


model_dir = required_dir("TINYML_MODEL_DIR", "the `tinyml compile` (engine) or `tinyml emit` (tflm) output directory")
missing = [name for name in resolved_env.model_required_files if not os.path.isfile(os.path.join(model_dir, name))]
if missing:
    step = "tinyml compile" if backend == "engine" else "tinyml emit"
    fail(f"{model_dir} lacks {', '.join(missing)} for the {backend} backend: run `{step} MODEL.tflite --out DIR`")

env.Append(CPPPATH=[model_dir])  # noqa: F821
model_sources = " ".join(f"+<{name}>" for name in resolved_env.model_sources)
env.BuildSources(os.path.join("$BUILD_DIR", "tinyml_model"), model_dir, src_filter=model_sources)  # noqa: F821

if os.environ.get("TINYML_PROFILE"):
    env.Append(CPPDEFINES=["TINYML_PROFILE"])  # noqa: F821
if protocol == "mlperf":
    model_name = os.environ.get("TM_MLPERF_MODEL", "tinyml")
    env.Append(CPPDEFINES=[("TM_MLPERF_MODEL", f'\\"{model_name}\\"')])  # noqa: F821
    # As firmware/mlperf/mlperf.cmake: the db buffer is one sample as the runner sends it.
    mlperf_input = os.environ.get("TM_MLPERF_INPUT", "int8")
    mlperf_results = os.environ.get("TM_MLPERF_RESULTS", "dequantized")
    header = os.path.join(model_dir, "model.h" if backend == "engine" else "model_io.h")
    found = re.search(r"#define TINYML_(?:MODEL_)?INPUT_BYTES\s+(\d+)", open(header).read())
    if found is None:
        fail(f"{header} has no input byte count: run `tinyml compile` / `tinyml emit` again")
    db_bytes = int(found.group(1)) * (4 if mlperf_input == "float32" else 1)
    env.Append(CPPDEFINES=[("TM_MLPERF_DB_BYTES", f"{db_bytes}u")])  # noqa: F821
    extra = {"uint8": ["TM_MLPERF_INPUT_UINT8"], "float32": ["TM_MLPERF_INPUT_FLOAT32"]}.get(mlperf_input, [])
    extra += {"softmax": ["TM_MLPERF_RESULTS_SOFTMAX"], "anomaly-score": ["TM_MLPERF_RESULTS_ANOMALY"]}.get(
        mlperf_results, [])
    env.Append(CPPDEFINES=extra)  # noqa: F821


def vendor_kernel_excludes(tree):
    """A vendor kernel kernels/<vendor>/X.cc replaces the reference kernels/X.cc."""
    kernels = os.path.join(tree, "tensorflow", "lite", "micro", "kernels")
    excludes = []
    for vendor in ("cmsis_nn", "esp_nn"):
        vendor_dir = os.path.join(kernels, vendor)
        if not os.path.isdir(vendor_dir):
            continue
        for name in sorted(os.listdir(vendor_dir)):
            if name.endswith(".cc") and os.path.isfile(os.path.join(kernels, name)):
                excludes.append(f"-<tensorflow/lite/micro/kernels/{name}>")
    return excludes


if backend == "tflm":
    tree = required_dir("TINYML_TFLM_DIR", "a TFLite-Micro tree (see the [tinyml] section of platformio.ini)")
    is_esp = env.subst("$PIOPLATFORM") == "espressif32"  # noqa: F821
    pin_key = "esp_tflite_micro_version" if is_esp else "tflm_commit"
    expected_pin = config.get("tinyml", pin_key)
    pin_file = os.path.join(tree, "TINYML_TFLM_PIN")
    found_pin = open(pin_file).read().strip() if os.path.isfile(pin_file) else ""
    pinned = bool(found_pin) and (found_pin.startswith(expected_pin) or expected_pin.startswith(found_pin))
    if not pinned:
        fail(f"{tree} is TFLite-Micro '{found_pin or 'unknown'}', platformio.ini pins {pin_key} = {expected_pin}: "
             f"write the pin into {pin_file} once the tree is made from it")
    print(f"tinyml: TFLite-Micro {found_pin} from {tree}, model {model_dir}")

    third_party = os.path.join(tree, "third_party")
    includes = [tree]
    for sub in ("flatbuffers/include", "gemmlowp", "kissfft", "ruy", "cmsis_nn", "cmsis_nn/Include",
                "cmsis/CMSIS/Core/Include", "cmsis/CMSIS/DSP/Include"):
        path = os.path.join(third_party, sub)
        if os.path.isdir(path):
            includes.append(path)
    defines = ["TF_LITE_STATIC_MEMORY", "TF_LITE_DISABLE_X86_NEON"]
    sources = ["+<tensorflow/**/*.cc>", "+<tensorflow/**/*.c>", "+<signal/**/*.cc>",
               "-<tensorflow/**/*_test.cc>", "-<**/examples/**>", "-<**/benchmarks/**>"]
    sources += vendor_kernel_excludes(tree)
    sources += config.get("tinyml", "tflm_tree_excludes", "").split()
    if os.path.isdir(os.path.join(third_party, "cmsis_nn")):
        defines.append("CMSIS_NN")
        sources.append("+<third_party/cmsis_nn/Source/**/*.c>")
    esp_nn = os.path.join(tree, "esp-nn")
    if is_esp:
        if not os.path.isdir(esp_nn):
            fail(f"{tree} has no esp-nn/ (check out espressif/esp-nn there)")
        defines += ["ESP_NN", ("CONFIG_NN_OPTIMIZED", 1)]
        includes += [os.path.join(esp_nn, "include"), os.path.join(esp_nn, "src", "common")]
        nn_sources = ["+<src/**/*.c>"]
        if env.BoardConfig().get("build.mcu", "") == "esp32s3":  # noqa: F821
            nn_sources.append("+<src/**/*esp32s3*.S>")  # the S3's vector-instruction kernels
        else:
            nn_sources.append("-<src/**/*esp32s3*>")
        env.BuildSources(os.path.join("$BUILD_DIR", "esp_nn"), esp_nn, src_filter=nn_sources)  # noqa: F821
    env.Append(CPPPATH=includes, CPPDEFINES=defines)  # noqa: F821
    env.Append(CXXFLAGS=["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"])  # noqa: F821
    env.BuildSources(os.path.join("$BUILD_DIR", "tflm"), tree, src_filter=sources)  # noqa: F821
