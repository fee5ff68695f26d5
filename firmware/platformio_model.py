"""PlatformIO extra script (pre:) of firmware/platformio.ini: brings the model
and, for the `_tflm` environments, the TFLite-Micro tree into the build.

  TINYML_MODEL_DIR  `tinyml compile` output (model.c, model.h) for the engine,
                    `tinyml emit` output (model_data.cc, model_ops.h, model_io.h) for tflm
  TINYML_TFLM_DIR   a TFLite-Micro source tree (tflm environments only):
                    create_tflm_tree.py output with CMSIS-NN for Cortex-M, or an
                    esp-tflite-micro checkout with esp-nn/ inside for ESP32.
                    A file TINYML_TFLM_PIN in it holds the commit or version it
                    was made from; it must match platformio.ini's [tinyml] pin.

Runs inside PlatformIO's SCons (Import("env")); not importable elsewhere.
"""

import os
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


def required_dir(variable, what):
    path = os.environ.get(variable, "")
    if not path:
        fail(f"set {variable} to {what}")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(path):
        fail(f"{variable}={path} is not a directory")
    return path


model_dir = required_dir("TINYML_MODEL_DIR", "the `tinyml compile` (engine) or `tinyml emit` (tflm) output directory")
needed = ["model.c", "model.h"] if backend == "engine" else ["model_data.cc", "model_data.h", "model_ops.h", "model_io.h"]
missing = [name for name in needed if not os.path.isfile(os.path.join(model_dir, name))]
if missing:
    step = "tinyml compile" if backend == "engine" else "tinyml emit"
    fail(f"{model_dir} lacks {', '.join(missing)} for the {backend} backend: run `{step} MODEL.tflite --out DIR`")

env.Append(CPPPATH=[model_dir])  # noqa: F821
model_sources = "+<model.c>" if backend == "engine" else "+<model_data.cc>"
env.BuildSources(os.path.join("$BUILD_DIR", "tinyml_model"), model_dir, src_filter=model_sources)  # noqa: F821

if os.environ.get("TINYML_PROFILE"):
    env.Append(CPPDEFINES=["TINYML_PROFILE"])  # noqa: F821
if protocol == "mlperf":
    model_name = os.environ.get("TM_MLPERF_MODEL", "tinyml")
    env.Append(CPPDEFINES=[("TM_MLPERF_MODEL", f'\\"{model_name}\\"')])  # noqa: F821


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
