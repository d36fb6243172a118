"""load_image: every PIL mode and the usual formats become 8-bit RGB; broken files give ImageDecodeError."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from graftwork.data import ImageDecodeError, load_image

WHITE = [255, 255, 255]


def decoded(path) -> np.ndarray:
    """Load through graftwork and check the contract every caller relies on: 8-bit RGB, same size."""
    image = load_image(path)
    with Image.open(path) as original:
        size = original.size
    assert image.mode == "RGB"
    assert image.size == size
    arr = np.asarray(image)
    assert arr.dtype == np.uint8 and arr.shape == (size[1], size[0], 3)
    return arr


def test_rgb_image_is_returned_unchanged(tmp_path):
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    Image.fromarray(pixels, "RGB").save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(decoded(tmp_path / "rgb.png"), pixels)


def test_grey_l_becomes_three_equal_channels(tmp_path):
    Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8), "L").save(tmp_path / "grey.png")
    assert decoded(tmp_path / "grey.png")[0].tolist() == [[0, 0, 0], [77, 77, 77], WHITE]


def test_one_bit_image(tmp_path):
    Image.new("1", (2, 2), 1).save(tmp_path / "bw.png")
    assert decoded(tmp_path / "bw.png")[0, 0].tolist() == WHITE


def _palette_image() -> Image.Image:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)  # index 0 red, 1 blue
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    return image


def test_palette_without_transparency_uses_palette_colours(tmp_path):
    _palette_image().save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "P" and "transparency" not in im.info
    assert decoded(tmp_path / "p.png")[0].tolist() == [[255, 0, 0], [0, 0, 255]]


@pytest.mark.parametrize("ext", ["png", "gif"])
def test_palette_transparent_index_becomes_white(tmp_path, ext):
    path = tmp_path / f"p.{ext}"
    _palette_image().save(path, transparency=0)
    with Image.open(path) as im:
        assert im.mode == "P" and im.info.get("transparency") == 0
    assert decoded(path)[0].tolist() == [WHITE, [0, 0, 255]]


def test_rgba_is_composited_on_white(tmp_path):
    pixels = np.array([[[10, 20, 30, 0], [10, 20, 30, 255], [0, 0, 0, 128]]], dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(tmp_path / "rgba.png")
    out = decoded(tmp_path / "rgba.png")[0]
    assert out[0].tolist() == WHITE  # fully transparent: white, not the hidden colour, not black
    assert out[1].tolist() == [10, 20, 30]  # opaque: unchanged
    assert all(125 <= v <= 129 for v in out[2])  # half-transparent black over white: mid grey


def test_la_is_composited_on_white(tmp_path):
    pixels = np.array([[[0, 0], [50, 255]]], dtype=np.uint8)
    Image.fromarray(pixels, "LA").save(tmp_path / "la.png")
    with Image.open(tmp_path / "la.png") as im:
        assert im.mode == "LA"
    assert decoded(tmp_path / "la.png")[0].tolist() == [WHITE, [50, 50, 50]]


@pytest.mark.parametrize("ext", ["tiff", "jpg"])
def test_cmyk(tmp_path, ext):
    path = tmp_path / f"cmyk.{ext}"
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(path)  # no cyan, full magenta and yellow: red
    with Image.open(path) as im:
        assert im.mode == "CMYK"
    r, g, b = decoded(path)[0, 0].tolist()
    assert r >= 245 and g <= 10 and b <= 10


@pytest.mark.parametrize("ext", ["png", "tiff"])
def test_16_bit_is_rescaled_not_clipped(tmp_path, ext):
    path = tmp_path / f"deep.{ext}"
    Image.fromarray(np.array([[0, 1000, 128 * 257, 65535]], dtype=np.uint16)).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I;16")
    # 65535 is full white; 1000 is dark (clipping would make it 255); mid-range lands mid-range.
    assert decoded(path)[0, :, 0].tolist() == [0, 3, 128, 255]


def test_32_bit_integer_above_8_bits_is_rescaled(tmp_path):
    Image.fromarray(np.array([[0, 100_000, 200_000]], dtype=np.int32)).save(tmp_path / "i.tiff")
    with Image.open(tmp_path / "i.tiff") as im:
        assert im.mode == "I"
    assert decoded(tmp_path / "i.tiff")[0, :, 0].tolist() == [0, 127, 255]


def test_32_bit_integer_within_8_bits_is_kept(tmp_path):
    Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32)).save(tmp_path / "i.tiff")
    assert decoded(tmp_path / "i.tiff")[0, :, 0].tolist() == [0, 100, 255]


def test_float_is_rescaled(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f.tiff")
    with Image.open(tmp_path / "f.tiff") as im:
        assert im.mode == "F"
    out = decoded(tmp_path / "f.tiff")
    assert out[0, :, 0].tolist() == [0, 127, 255]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


@pytest.mark.parametrize("ext,tolerance", [("jpg", 6), ("jpeg", 6), ("png", 0), ("bmp", 0), ("webp", 6),
                                           ("gif", 0), ("tif", 0), ("tiff", 0)])
def test_formats(tmp_path, image_file, ext, tolerance):
    path = image_file(tmp_path / f"img.{ext}", colour=(200, 100, 50), size=16)
    out = decoded(path).astype(int)
    assert np.abs(out - np.array([200, 100, 50])).max() <= tolerance


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as im:
        assert im.n_frames == 3
        im.seek(2)
        assert im.convert("RGB").getpixel((0, 0)) == (0, 0, 255)  # the file really has other frames
    out = decoded(path)
    assert (out == [255, 0, 0]).all()


def test_result_does_not_depend_on_the_file(tmp_path, image_file):
    path = image_file(tmp_path / "gone.png", colour=(1, 2, 3))
    image = load_image(path)
    path.unlink()
    assert image.getpixel((0, 0)) == (1, 2, 3)


def test_random_bytes_named_jpg(tmp_path):
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageDecodeError, match="not an image"):
        load_image(path)


def test_truncated_jpeg(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="truncated"):
        load_image(tmp_path / "half.jpg")


def test_truncated_png(tmp_path, image_file):
    data = image_file(tmp_path / "full.png", size=64).read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="truncated"):
        load_image(tmp_path / "half.png")


def test_text_file_renamed_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are my notes, not a picture\n")
    with pytest.raises(ImageDecodeError, match="not an image"):
        load_image(path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageDecodeError):
        load_image(tmp_path / "empty.png")


def test_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="file not found"):
        load_image(tmp_path / "nope.png")


def test_decode_error_message_is_one_readable_line(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    with pytest.raises(ImageDecodeError) as info:
        load_image(path)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message
    assert info.value.__suppress_context__  # the PIL exception is not chained into what the user sees
