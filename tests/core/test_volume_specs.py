"""``smartvault:volumes``: what a restore rebuilds a volume from once it is gone."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from smartvault.core.model import VolumeSpec
from smartvault.core.model import decode_volume_specs
from smartvault.core.model import encode_volume_specs


def test_specs_read_back_as_written() -> None:
    specs = {
        "/dev/sdf": VolumeSpec("gp3", 6000, 250, {"Name": "db-data"}),
        "/dev/sdg": VolumeSpec("st1"),
    }
    text, full = encode_volume_specs(specs)
    assert full is None
    assert decode_volume_specs(text) == specs


def test_aws_tags_are_never_recorded() -> None:
    text, _ = encode_volume_specs({"vol-1": VolumeSpec("gp2", tags={"aws:x": "1", "a": "b"})})
    assert decode_volume_specs(text)["vol-1"].tags == {"a": "b"}


def test_a_value_too_long_keeps_whole_entries_and_the_full_text() -> None:
    specs = {f"/dev/sd{c}": VolumeSpec("io2", 64000, None, {"Name": "x" * 60}) for c in "fghij"}
    text, full = encode_volume_specs(specs)
    assert len(text) <= 256
    assert full is not None
    assert decode_volume_specs(full) == specs
    kept = decode_volume_specs(text)
    assert kept
    assert set(kept) < set(specs)
    assert all(kept[k] == specs[k] for k in kept)


def test_anything_else_is_no_spec_never_a_guess() -> None:
    assert decode_volume_specs(None) == {}
    assert decode_volume_specs("not json") == {}
    assert decode_volume_specs("[1]") == {}
    bad = {
        "a": {"type": ""},
        "b": {"type": "gp3", "iops": "3000"},
        "c": {"type": "gp3", "iops": True},
        "d": {"type": "gp3", "tags": {"k": 1}},
        "e": "gp3",
        "ok": {"type": "gp3"},
    }
    assert decode_volume_specs(json.dumps(bad)) == {"ok": VolumeSpec("gp3")}


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.builds(
            VolumeSpec,
            st.sampled_from(["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"]),
            st.none() | st.integers(1, 256000),
            st.none() | st.integers(1, 2000),
            st.dictionaries(
                st.text(max_size=8).filter(lambda k: not k.lower().startswith("aws:")),
                st.text(max_size=8),
                max_size=3,
            ),
        ),
        max_size=6,
    )
)
def test_a_tag_value_always_fits_and_never_changes_an_entry(specs) -> None:
    specs.pop("smartvault:cut", None)
    text, full = encode_volume_specs(specs)
    assert len(text) <= 256
    assert decode_volume_specs(full or text) == specs
    assert all(specs[k] == v for k, v in decode_volume_specs(text).items())
