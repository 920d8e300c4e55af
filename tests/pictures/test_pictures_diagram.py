"""The partition diagram: one SVG group per node of the delegation plan, holding that node's ops, its
reason and its measured time; several panels on one sheet."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("matplotlib")

from deeplab_nnapi.nnapi.delegation import DelegateOptions, check_model  # noqa: E402
from deeplab_nnapi.nnapi.profile import load_profile  # noqa: E402
from deeplab_nnapi.pictures import make_panel, node_groups, render_diagram  # noqa: E402

STOCK = DelegateOptions(delegate="stock")
PATCHED = DelegateOptions(delegate="patched")

#: The seed profile's 8 nodes: (node index, ops) in run order.
SEED_NODES = [(71, list(range(61)) + [64]), (61, [61]), (72, [62]), (63, [63]), (73, [65, 66, 67]),
              (68, [68]), (69, [69]), (70, [70])]


def _expected(plan):
    return [(n.index, sorted(n.ops)) for n in plan.nodes]


def _groups_by_id(svg: bytes):
    return {el.get("id"): el for el in ET.fromstring(svg).iter() if el.tag.endswith("g") and el.get("id")}


def _texts(el) -> str:
    return " ".join("".join(t.itertext()) for t in el.iter() if t.tag.endswith("text"))


def test_every_reference_model_has_one_group_per_node(reference_models):
    assert len(reference_models) == 8
    for path in reference_models:
        for options in (STOCK, PATCHED):
            plan = check_model(path, options)
            svg = render_diagram([make_panel(path, options)], "svg")
            got = node_groups(svg)
            assert list(got) == [0]
            assert [(i, sorted(ops)) for i, ops in got[0]] == _expected(plan), (path.name, options.delegate)
            # every op appears in exactly one node group
            assert sorted(op for _, ops in got[0] for op in ops) == list(range(plan.num_ops))


def test_google_shaped_model_shows_the_seed_profiles_eight_nodes(google_model, seed_profile):
    panel = make_panel(google_model, STOCK, profile=load_profile(seed_profile))
    svg = render_diagram([panel], "svg")
    assert node_groups(svg)[0] == SEED_NODES
    groups = _groups_by_id(svg)
    # ids carry node and ops; each node's box carries its measured time; refused ops their reason
    assert "node-71-ops-0-60_64" in groups and "node-73-ops-65-67" in groups
    assert "11.422 ms" in _texts(groups["node-71-ops-0-60_64"])
    assert "22.369 ms" in _texts(groups["node-69-ops-69"]) and "43.0 %" in _texts(groups["node-69-ops-69"])
    assert "filter 65x65 = 4225 > 256" in _texts(groups["node-61-ops-61"])
    assert "align_corners == true" in _texts(groups["node-63-ops-63"])
    assert "int32 output" in _texts(groups["node-70-ops-70"])
    assert "refused" not in _texts(groups["node-72-ops-62"])
    # the title is the summary line: nodes and the delegate's share
    title = _texts(ET.fromstring(svg))
    assert "8 nodes (3 NNAPI, 5 CPU)" in title and "66 of 71 ops on NNAPI" in title
    assert "25.9 % of the run on NNAPI (profile)" in title


def test_delegate_partitions_get_distinct_colours_and_cpu_ops_grey(google_model):
    from deeplab_nnapi.pictures.planview import CPU_COLOR

    panel = make_panel(google_model, STOCK)
    colors = [panel.node_color(n) for n in panel.plan.nodes]
    delegate = [c for n, c in zip(panel.plan.nodes, colors) if n.is_delegate]
    assert len(delegate) == 3 and len(set(delegate)) == 3 and CPU_COLOR not in delegate
    assert all(c == CPU_COLOR for n, c in zip(panel.plan.nodes, colors) if not n.is_delegate)


def test_data_flow_between_nodes(google_model):
    panel = make_panel(google_model, STOCK)
    # positions in run order: body -> pool -> pool conv -> resize -> concat..logits <- body (aspp0) -> ...
    assert panel.edges() == [(0, 1), (0, 4), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7)]


def test_sheet_puts_panels_side_by_side(google_model, pascal_513_os8):
    panels = [make_panel(google_model, STOCK, "original"), make_panel(pascal_513_os8, STOCK, "fixed"),
              make_panel(pascal_513_os8, PATCHED, "fixed")]
    svg = render_diagram(panels, "svg")
    got = node_groups(svg)
    assert list(got) == [0, 1, 2]
    for k, panel in enumerate(panels):
        assert [(i, sorted(o)) for i, o in got[k]] == _expected(panel.plan)
    ids = [el.get("id") for el in ET.fromstring(svg).iter() if el.get("id")]
    assert len(ids) == len(set(ids)), "ids must be unique in one SVG document"
    assert "p0-node-71-ops-0-60_64" in ids and "p2-node-71-ops-0-70" in ids
    assert {"panel-0", "panel-1", "panel-2"} <= set(ids)


def test_profile_that_does_not_fit_the_plan_is_not_drawn_as_times(pascal_513_os8, seed_profile):
    panel = make_panel(pascal_513_os8, PATCHED, profile=load_profile(seed_profile))
    assert panel.times == [] and "8 nodes, this plan 1" in panel.profile_note
    svg = render_diagram([panel], "svg")
    assert " ms " not in _texts(_groups_by_id(svg)["node-71-ops-0-70"])


def test_png_diagram_and_same_svg_twice(google_model):
    from PIL import Image as PILImage

    panel = make_panel(google_model, STOCK)
    png = render_diagram([panel], "png", dpi=100)
    with PILImage.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.width == 760 and im.height > 760  # 7.6 in wide, nodes stacked
    assert render_diagram([panel], "svg") == render_diagram([panel], "svg")  # reproducible files
