"""The declarative rule (patches/models/rule.toml) and its engine (deeplab_nnapi.patching.pyrule): which call
sites change how, on DeepLab-shaped files of every layout; exact edits (nothing else in the file moves);
refusal of what it cannot decide."""

from __future__ import annotations

import pytest
from apply_helpers import REAL_MANIFEST
from deeplab_like import EXPORT, MODEL, UTILS, files
from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.patching import pyrule
from deeplab_nnapi.patching.rulefile import load_rule
from hypothesis import given, settings
from hypothesis import strategies as st

RULE = load_rule(REAL_MANIFEST.parent / "models" / "rule.toml")


def _rule(path):
    return RULE.file(path)


@pytest.mark.parametrize("state", ["legacy", "helper", "final", "compat"])
def test_every_site_is_done_after_apply_and_revert_gives_the_bytes_back(state):
    for path, text in files(state).items():
        fr = _rule(path)
        src = text.encode()
        res = fr.apply(src)
        assert all(s.state == pyrule.DONE for s in fr.scan(res.text)), (state, path)
        assert fr.apply(res.text).text == res.text  # idempotent
        assert fr.revert(res.text).text == src, (state, path)


def test_what_changes_on_the_final_layout():
    out = {p: _rule(p).apply(t.encode()).text.decode() for p, t in files("final").items()}
    assert "tf.image.resize_bilinear(images, size, align_corners=False)" in out[UTILS]
    model = out[MODEL]
    assert model.count("output_type=tf.int32") == 3 and "tf.argmax(logits, 3)" not in model
    assert "align_corners=True" not in model and model.count("align_corners=False") == 2
    # the export's label-map resize (after ArgMax, outside the converted graph) stays as upstream has it
    assert "NEAREST_NEIGHBOR, align_corners=True" in out[EXPORT]
    assert "[513, 513], align_corners=False,\n      name='SemanticProbabilities'" in out[EXPORT]


def test_compat_v1_calls_and_aliases_are_recognised():
    src = files("compat")[UTILS].encode()
    want = b"tf.compat.v1.image.resize_bilinear(images, size, align_corners=False)"
    assert want in _rule(UTILS).apply(src).text
    aliased = b"import tensorflow.compat.v1 as tf1\n\ndef predict_labels(x):\n  return tf1.argmax(x, 3)\n"
    assert _rule(MODEL).apply(aliased).text.endswith(b"tf1.argmax(x, 3, output_type=tf1.int32)\n")


def test_deeplab_helpers_and_other_modules_are_left_alone():
    src = (b"import tensorflow as tf\nimport numpy as np\nfrom deeplab.core import utils\n\n"
           b"def predict_labels(x):\n  a = utils.resize_bilinear(x, [3, 3], tf.float32)\n"
           b"  b = _resize_bilinear(x, [3, 3])\n  return np.argmax(a, 3), b\n")
    assert _rule(MODEL).scan(src) == [] and _rule(MODEL).apply(src).text == src


def test_within_limits_the_nearest_neighbour_edit_to_predict_labels():
    src = (b"import tensorflow as tf\n\ndef predict_labels(x):\n"
           b"  return tf.image.resize_nearest_neighbor(x, [9, 9], align_corners=True)\n\n"
           b"def training_only(x):\n"
           b"  return tf.image.resize_nearest_neighbor(x, [9, 9], align_corners=True)\n")
    out = _rule(MODEL).apply(src).text.decode()
    assert out.count("align_corners=False") == 1
    assert out.index("align_corners=False") < out.index("training_only")


def test_a_long_line_gets_the_keyword_on_its_own_line_aligned_with_the_arguments():
    src = (b"import tensorflow as tf\n\ndef f(x):\n"
           b"    outputs_to_predictions[output] = tf.argmax(predictions, 3)\n")
    out = _rule(MODEL).apply(src).text.decode().splitlines()
    assert out[-2] == "    outputs_to_predictions[output] = tf.argmax(predictions, 3,"
    assert out[-1] == " " * out[-2].index("predictions, 3") + "output_type=tf.int32)"


@pytest.mark.parametrize("call", [
    "tf.image.resize_bilinear(x, s, align_corners=flag)",
    "tf.image.resize_bilinear(x, s, True)",
    "tf.image.resize_bilinear(x, s, **kw)",
    "tf.argmax(x, 3, output_type=dtype)",
    "tf.argmax(x, 3, None, None, tf.int64)",
])
def test_a_call_the_rule_cannot_read_is_refused_not_guessed(call):
    src = f"import tensorflow as tf\n\ndef predict_labels(x, s, flag, kw, dtype):\n  return {call}\n".encode()
    with pytest.raises(pyrule.RuleError, match="cannot decide"):
        _rule(MODEL).apply(src)


def test_int64_argmax_is_changed_and_reverted_to_the_upstream_form():
    src = b"import tensorflow as tf\n\ndef f(x):\n  return tf.argmax(x, 3, output_type=tf.int32)\n"
    want = b"import tensorflow as tf\n\ndef f(x):\n  return tf.argmax(x, 3)\n"
    assert _rule(MODEL).revert(src).text == want


def test_not_python_is_a_rule_error():
    with pytest.raises(pyrule.RuleError, match="not Python"):
        _rule(MODEL).scan(b"def broken(:\n")


def test_crlf_files_keep_crlf():
    src = (b"import tensorflow as tf\r\n\r\ndef f(x):\r\n"
           b"    outputs_to_predictions[output] = tf.argmax(predictions, 3)\r\n")
    out = _rule(MODEL).apply(src).text
    assert out.count(b"\n") == out.count(b"\r\n") and b"output_type=tf.int32" in out
    assert _rule(MODEL).revert(out).text == src


def test_rule_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "rule.toml"
    head = "schema = 1\nauthor='a'\ndate='d'\n"
    absolute = (head + "[[file]]\npath='/abs'\nslug='x'\norder=1\nsubject='s'\n"
                "[[file.edit]]\ncalls=['f']\nkeyword='k'\nposition=0\nto='v'\n")
    for text, msg in [("schema = 2\n", "schema"), (head, r"no \[\[file\]\]"), (absolute, "relative path")]:
        bad.write_text(text)
        with pytest.raises(UsageError, match=msg) as exc:
            load_rule(bad)
        assert "\n" not in str(exc.value)


# -- fuzzing: whatever the formatting of the calls, apply then revert gives the exact bytes back ------
_ws = st.sampled_from(["", " ", "  ", "\n      ", "\n  "])
_arg = st.sampled_from(["x", "logits", "tf.shape(images)[1:3]", "[33, 33]", "f(a, b)", "3"])


@st.composite
def _module(draw):
    calls = []
    for _ in range(draw(st.integers(1, 5))):
        kinds = ["argmax", "argmax32", "resize", "resize_false", "resize_default", "other"]
        kind = draw(st.sampled_from(kinds))
        a, b, w1, w2 = draw(_arg), draw(_arg), draw(_ws), draw(_ws)
        calls.append({
            "argmax": f"tf.argmax({w1}{a},{w2}3)",
            "argmax32": f"tf.argmax({a}, 3,{w2}output_type=tf.int32)",
            "resize": f"tf.image.resize_bilinear({w1}{a}, {b},{w2}align_corners=True)",
            "resize_false": f"tf.compat.v1.image.resize_bilinear({a}, {b}, align_corners=False)",
            "resize_default": f"tf.image.resize_bilinear({a},{w2}{b})",
            "other": f"helper({a}, {b})",
        }[kind])
    body = "".join(f"  y{i} = {c}  # keep this comment\n" for i, c in enumerate(calls))
    return f"import tensorflow as tf\n\n\ndef predict_labels(x):\n{body}  return x\n".encode()


@settings(max_examples=150, deadline=None)
@given(_module())
def test_fuzz_apply_then_revert_is_exact_and_touches_only_the_sites(src):
    fr = _rule(MODEL)
    res = fr.apply(src)
    assert all(s.state == pyrule.DONE for s in fr.scan(res.text))
    assert res.text.count(b"# keep this comment") == src.count(b"# keep this comment")
    undone = fr.revert(res.text).text
    # revert puts back the upstream form of every done site; sites that were already done before apply
    # (int32 argmax, align_corners=False) are reverted too, so compare with the fully reverted original
    assert undone == fr.revert(src).text
    # from the upstream form, apply and revert are exact inverses
    again = fr.apply(undone).text
    assert all(s.state == pyrule.DONE for s in fr.scan(again)) and fr.revert(again).text == undone
