"""Patching: the patch manifest, TF version detection, git operations, applying and reversing patches."""
