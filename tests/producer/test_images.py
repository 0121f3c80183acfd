"""Every value kind log_image accepts, and what it refuses (docs/legacy-behaviour.md#logged-values)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from expstream.exceptions import FileNotFound, InvalidChannelValue, NotAFile
from expstream.producer.images import IMAGE_SIZE_LIMIT_BYTES, check_image_size, image_to_png_bytes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def decode(data: bytes) -> Image.Image:
    assert data.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_path_gives_raw_file_bytes_unchecked(tmp_path: Path) -> None:
    path = tmp_path / "not-really.png"
    path.write_bytes(b"any bytes at all")
    assert image_to_png_bytes(str(path)) == b"any bytes at all"
    assert image_to_png_bytes(path) == b"any bytes at all"  # pathlib.Path: a harmless improvement


def test_missing_path_raises_file_not_found(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.png")
    with pytest.raises(FileNotFound, match=r"nope\.png"):
        image_to_png_bytes(missing)


def test_directory_path_raises_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(NotAFile):
        image_to_png_bytes(str(tmp_path))


def test_pil_image_becomes_png() -> None:
    image = Image.new("RGB", (60, 30), color="red")
    decoded = decode(image_to_png_bytes(image))
    assert decoded.size == (60, 30)
    assert decoded.mode == "RGB"
    assert decoded.getpixel((0, 0)) == (255, 0, 0)


def test_pil_image_in_a_mode_png_cannot_hold_is_converted() -> None:
    decoded = decode(image_to_png_bytes(Image.new("CMYK", (4, 4))))
    assert decoded.mode == "RGB"


def test_matplotlib_figure_becomes_png() -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([1, 2, 3, 4])
    decoded = decode(image_to_png_bytes(figure))
    assert decoded.width > 10 and decoded.height > 10


def test_matplotlib_is_not_imported_for_other_values() -> None:
    code = (
        "import sys, numpy as np; from PIL import Image; "
        "from expstream.producer.images import image_to_png_bytes as f; "
        "f(np.zeros((2, 2))); f(Image.new('L', (2, 2))); "
        "sys.exit('matplotlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_2d_array_is_grayscale_scaled_by_255() -> None:
    array = np.array([[0.0, 0.5], [1.0, 0.25]])
    decoded = decode(image_to_png_bytes(array))
    assert decoded.mode == "L"
    assert np.array_equal(np.asarray(decoded), np.array([[0, 127], [255, 63]], dtype=np.uint8))


def test_3d_array_with_one_channel_is_squeezed_to_grayscale() -> None:
    decoded = decode(image_to_png_bytes(np.ones((3, 5, 1))))
    assert decoded.mode == "L"
    assert decoded.size == (5, 3)
    assert np.all(np.asarray(decoded) == 255)


@pytest.mark.parametrize(("channels", "mode"), [(3, "RGB"), (4, "RGBA")])
def test_3d_array_with_3_or_4_channels(channels: int, mode: str) -> None:
    array = np.zeros((2, 3, channels))
    array[..., 0] = 1.0
    decoded = decode(image_to_png_bytes(array))
    assert decoded.mode == mode
    assert decoded.size == (3, 2)
    assert np.asarray(decoded)[0, 0, 0] == 255


def test_out_of_range_values_wrap_as_legacy_cast_did() -> None:
    decoded = decode(image_to_png_bytes(np.array([[2.0, -1 / 255]])))
    assert np.asarray(decoded).tolist() == [[254, 255]]  # 510 % 256, -1 % 256


def test_integer_and_bool_arrays_are_accepted() -> None:
    assert np.asarray(decode(image_to_png_bytes(np.array([[0, 1]])))).tolist() == [[0, 255]]
    assert np.asarray(decode(image_to_png_bytes(np.array([[False, True]])))).tolist() == [[0, 255]]


def test_the_callers_array_is_not_modified() -> None:
    array = np.random.default_rng(0).random((4, 4, 3))
    before = array.copy()
    image_to_png_bytes(array)
    assert np.array_equal(array, before)  # legacy multiplied it by 255 in place


@pytest.mark.parametrize("shape", [(5,), (2, 2, 2), (2, 2, 5), (2, 2, 3, 1), (0, 4), ()])
def test_unusable_array_shapes_raise_value_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shape"):
        image_to_png_bytes(np.zeros(shape))


@pytest.mark.parametrize("value", [42, 1.5, None, b"bytes", [[0.0, 1.0]], {"a": 1}])
def test_other_values_raise_invalid_channel_value(value: object) -> None:
    with pytest.raises(InvalidChannelValue, match=f"Expected: image, actual: {type(value).__name__}"):
        image_to_png_bytes(value)


class _FakeTorchTensor:
    """Looks like torch.Tensor to duck typing, without torch installed."""

    __module__ = "torch"

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.calls: list[str] = []

    def detach(self) -> _FakeTorchTensor:
        self.calls.append("detach")
        return self

    def cpu(self) -> _FakeTorchTensor:
        self.calls.append("cpu")
        return self

    def numpy(self) -> np.ndarray:
        self.calls.append("numpy")
        return self.array  # shares memory, as torch does


class _FakeTfTensor:
    __module__ = "tensorflow.python.framework.ops"

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def numpy(self) -> np.ndarray:
        return self.array


def test_torch_tensor_is_detached_moved_to_cpu_and_not_modified() -> None:
    array = np.full((2, 2), 0.5)
    tensor = _FakeTorchTensor(array)
    assert np.asarray(decode(image_to_png_bytes(tensor))).tolist() == [[127, 127], [127, 127]]
    assert tensor.calls == ["detach", "cpu", "numpy"]
    assert np.all(array == 0.5)


def test_tensorflow_tensor_uses_numpy() -> None:
    array = np.ones((2, 2, 3))
    decoded = decode(image_to_png_bytes(_FakeTfTensor(array)))
    assert decoded.mode == "RGB"
    assert np.all(array == 1.0)


def test_real_torch_tensor_if_installed() -> None:
    torch = pytest.importorskip("torch")
    tensor = torch.full((2, 2), 0.5, requires_grad=True)
    assert np.asarray(decode(image_to_png_bytes(tensor))).tolist() == [[127, 127], [127, 127]]
    assert torch.all(tensor == 0.5)


def test_size_check_accepts_ordinary_images() -> None:
    assert check_image_size(image_to_png_bytes(np.zeros((8, 8)))) is None
    assert check_image_size(b"x" * IMAGE_SIZE_LIMIT_BYTES) is None  # the limit itself is allowed


def test_size_check_warns_over_the_15_mb_limit() -> None:
    assert IMAGE_SIZE_LIMIT_BYTES == 15 * 1024 * 1024
    warning = check_image_size(b"x" * (IMAGE_SIZE_LIMIT_BYTES + 1))
    assert warning is not None and "15 MB" in warning


def test_size_check_warns_about_empty_data() -> None:
    warning = check_image_size(b"")
    assert warning is not None and "empty" in warning


def test_size_check_with_a_custom_limit() -> None:
    assert check_image_size(b"12345", limit=4) is not None
    assert check_image_size(b"1234", limit=4) is None


def _whole_array_pixels(array: np.ndarray) -> np.ndarray:
    """The conversion as one whole-array expression: what the blockwise one must equal."""
    scaled = np.nan_to_num(np.asarray(array, dtype=np.float64) * 255.0, nan=0.0, posinf=0.0, neginf=0.0)
    return np.mod(np.trunc(scaled), 256).astype(np.uint8)


@pytest.mark.parametrize(
    "array",
    [
        np.linspace(-2.0, 3.0, 1200 * 700).reshape(1200, 700),  # many blocks, values that wrap
        np.linspace(0.0, 1.0, 900 * 800 * 3, dtype=np.float32).reshape(900, 800, 3),
        np.array([[np.nan, np.inf, -np.inf, 0.5, 1.0, -0.001]] * 3),
        (np.arange(600 * 1000).reshape(600, 1000) % 2).astype(bool),
        np.arange(1000 * 1000, dtype=np.int64).reshape(1000, 1000) % 7,
    ],
    ids=["float64-wrapping", "float32-rgb", "nan-inf", "bool", "int"],
)
def test_blockwise_conversion_equals_the_whole_array_one(array: np.ndarray) -> None:
    from expstream.producer.images import _to_pixels

    before = array.copy()
    got = _to_pixels(array)
    assert got.dtype == np.uint8 and got.shape == array.shape
    assert np.array_equal(got, _whole_array_pixels(array))
    assert np.array_equal(array, before, equal_nan=True)  # the caller's array is untouched


_PEAK_CHILD = r"""
import sys
import numpy as np
import expstream

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

expstream.init("acme/images")
exp = expstream.create_experiment("big", upload_source_files=[], send_hardware_metrics=False)
side = int(sys.argv[1])
image = np.empty((side, side))
image[:] = np.linspace(0.0, 1.0, side)  # a gradient: a small PNG, so the point is logged
exp.log_image("small", np.zeros((64, 64)))  # Pillow, zlib and the flusher loaded and running
exp.wait()
before = hwm()
exp.log_image("big", image)
exp.wait()
after = hwm()
exp.stop()
print(image.nbytes, before, after)
"""


@pytest.mark.slow
def test_logging_an_8000_square_float_image_does_not_double_peak_memory(tmp_path: Path) -> None:
    """Peak RSS (VmHWM) of a child process logging an 8000 x 8000 float64 array (512 MB): the logging
    adds well under half of the array's size; converting it whole would add several times its size."""
    env = {"EXPSTREAM_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_CHILD, "8000"], capture_output=True, text=True, env=env, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr
    nbytes, before, after = map(int, done.stdout.split())
    assert nbytes == 8000 * 8000 * 8
    assert after - before < nbytes // 2, f"peak grew by {(after - before) >> 20} MiB logging a {nbytes >> 20} MiB array"
