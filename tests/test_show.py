from sketchlib.book import source as show
from sketchlib.data import strokes


def test_source_is_the_real_code():
    text = show.source(strokes.pad_batch)
    assert text.startswith("def pad_batch(")
    assert "stroke3_to_stroke5" in text


def test_show_source_renders_markdown_code_block():
    md = show.show_source(strokes.stroke3_to_stroke5)
    assert "```python\ndef stroke3_to_stroke5(" in md.data
    assert "sketchlib.data.strokes.stroke3_to_stroke5" in md.data


def test_source_of_builtin_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="no source available"):
        show.source(len)


def test_show_source_of_a_module_is_titled_by_its_name():
    from sketchlib.train import schedules

    md = show.show_source(schedules)
    assert md.data.startswith("`sketchlib.train.schedules`")
    assert "def learning_rate(" in md.data
