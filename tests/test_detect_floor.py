"""The evidence floor (detect/floor.py): a thin flag needs a link to another flagged account."""

from __future__ import annotations

import inspect

import numpy as np

from _edges import edge_table
from distillshield import cli
from distillshield.detect.floor import LINK_KINDS, THIN_FLOOR, hold_thin_flags

IDS = ["thin-alone", "thin-ip", "thin-client", "thick-alone", "thin-pair-a", "thin-pair-b", "unflagged"]
N = np.array([2, 3, 1, 40, 5, 5, 2])
FLAGGED = np.array([True, True, True, True, True, True, False])


EDGES = edge_table(
    [
        ("thin-ip", "thick-alone", "ip"),  # an address shared with a flagged account: linked
        ("thin-client", "thick-alone", "client"),  # a stock SDK release: not a link
        ("thin-client", "thin-ip", "template"),  # a shared prompt skeleton: not a link
        ("thin-pair-a", "thin-pair-b", "payment"),  # two thin flags on one card: each other's link
        ("thin-alone", "unflagged", "payment"),  # a card shared with an unflagged account: no
    ]
)


def test_a_thin_flag_with_no_link_to_another_flag_is_held_with_its_reason() -> None:
    out, held = hold_thin_flags(IDS, N, FLAGGED, EDGES)
    assert set(held) == {"thin-alone", "thin-client"}
    assert dict(zip(IDS, out.tolist(), strict=True)) == {
        "thin-alone": False,
        "thin-ip": True,
        "thin-client": False,
        "thick-alone": True,  # 40 requests: its own evidence, whatever its links
        "thin-pair-a": True,
        "thin-pair-b": True,
        "unflagged": False,
    }
    assert held["thin-alone"].startswith("held: flagged on 2 request(s) (floor 10)")
    assert FLAGGED.tolist()[0] is True  # the input is not modified


def test_the_floor_can_be_lowered_turned_off_or_waived() -> None:
    out, held = hold_thin_flags(IDS, N, FLAGGED, EDGES, floor=2)  # only fewer than 2 requests
    assert set(held) == {"thin-client"} and out[0]
    out, held = hold_thin_flags(IDS, N, FLAGGED, EDGES, floor=0)
    assert held == {} and out.tolist() == FLAGGED.tolist()
    exempt = np.array([name == "thin-alone" for name in IDS])  # e.g. reported by a peer
    _, held = hold_thin_flags(IDS, N, FLAGGED, EDGES, exempt=exempt)
    assert set(held) == {"thin-client"}


def test_a_hub_shared_with_another_flag_is_a_link() -> None:
    # thin-client runs a pinned stack held by dozens, most of them flagged (a hub), with the
    # thick account; thin-alone's stack is a hub too, but no other flagged account holds it
    hubs = {
        "client=harness": ["thin-client", "thick-alone", "unflagged"],
        "client=other": ["thin-alone", "unflagged"],
    }
    out, held = hold_thin_flags(IDS, N, FLAGGED, EDGES, hubs=hubs)
    assert set(held) == {"thin-alone"} and out[IDS.index("thin-client")]
    assert "hub" in held["thin-alone"]


def test_every_link_kind_is_an_edge_kind_and_the_cli_default_is_the_floor() -> None:
    from distillshield.linking import EDGE_KINDS

    assert set(LINK_KINDS) <= set(EDGE_KINDS)
    assert "client" not in LINK_KINDS and "template" not in LINK_KINDS and "sync" not in LINK_KINDS
    for command in (cli.scan, cli.replay):
        assert inspect.signature(command).parameters["thin_floor"].default == THIN_FLOOR
