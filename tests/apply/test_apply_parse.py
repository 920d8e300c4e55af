"""parse_patch against diffs of arbitrary text (lines that look like diff headers included)."""

from __future__ import annotations

import difflib

from deeplab_nnapi.patching.patchfile import parse_patch
from hypothesis import given, settings
from hypothesis import strategies as st

line = st.text(alphabet="-+ @ab\\", min_size=0, max_size=6)
texts = st.lists(line, min_size=0, max_size=40)


@settings(max_examples=200, deadline=None)
@given(old=texts, new=texts)
def test_hunks_and_paths_match_the_diff(old, new):
    diff = list(
        difflib.unified_diff([x + "\n" for x in old], [x + "\n" for x in new], "a/dir/f.txt", "b/dir/f.txt")
    )
    parsed = parse_patch(("diff --git a/dir/f.txt b/dir/f.txt\n" + "".join(diff)).encode())
    headers = [ln for ln in diff if ln.startswith("@@ ")]
    if not diff:
        assert parsed.files and parsed.files[0].hunks == []
        return
    assert parsed.paths() == ["dir/f.txt"]
    assert [h.header for h in parsed.files[0].hunks] == [h.rstrip("\n") for h in headers]


def test_created_deleted_and_renamed_files():
    text = (
        b"diff --git a/new.txt b/new.txt\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n"
        b"+++ b/new.txt\n@@ -0,0 +1 @@\n+x\n"
        b"diff --git a/old.txt b/old.txt\ndeleted file mode 100644\nindex 2222222..0000000\n--- a/old.txt\n"
        b"+++ /dev/null\n@@ -1 +0,0 @@\n-y\n"
        b"diff --git a/r1.txt b/r2.txt\nsimilarity index 100%\nrename from r1.txt\nrename to r2.txt\n"
        b'diff --git "a/sp ace.txt" "b/sp ace.txt"\nindex 3333333..4444444 100644\n--- "a/sp ace.txt"\n'
        b'+++ "b/sp ace.txt"\n@@ -1 +1 @@\n-a\n+b\n'
    )
    p = parse_patch(text)
    assert [(f.old_path, f.new_path) for f in p.files] == [
        (None, "new.txt"),
        ("old.txt", None),
        ("r1.txt", "r2.txt"),
        ("sp ace.txt", "sp ace.txt"),
    ]
    assert p.files[0].old_blob == "0000000" and p.files[3].new_blob == "4444444"
    assert p.paths() == ["new.txt", "old.txt", "r1.txt", "r2.txt", "sp ace.txt"]
