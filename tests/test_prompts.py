import pytest

from optiroute import InvalidInputError
from optiroute.analysis.prompts import content_text, to_routable


@pytest.mark.parametrize(
    "bad", [None, b"hello", bytearray(b"x"), "", "   \n\t", [], 42, [{"role": "user", "content": "  "}]]
)
def test_bad_prompts_get_a_clear_error(bad):
    with pytest.raises(InvalidInputError):
        to_routable(bad)


def test_messages_route_on_the_last_user_turn_but_count_everything():
    msgs = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        ("user", "Now write a haiku about it."),
    ]
    r = to_routable(msgs)
    assert r.text == "Now write a haiku about it."
    assert r.total_chars == sum(len(m["content"]) for m in msgs[:3]) + len(msgs[3][1])


def test_objects_and_content_blocks():
    class Msg:
        type = "human"
        content = [{"type": "text", "text": "Explain"}, {"type": "image_url", "image_url": "x"}, "gravity"]

    assert to_routable([Msg()]).text == "Explain\ngravity"
    assert content_text(None) == ""
    with pytest.raises(InvalidInputError):
        content_text(3.5)


def test_nul_bytes_are_neutralised_not_fatal():
    assert "\x00" not in to_routable("a\x00b").text
