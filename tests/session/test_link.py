"""Links to a view: what they carry, and that a link from a stranger is checked, never trusted."""

from __future__ import annotations

import math

import pytest

from depara_core.session.link import LINK_KEYS, MAX_LAMBDA, LinkChoices, checked_lambda, link_params, link_url, read_link

CHOICES = LinkChoices(zoos={"z": ("a", "b", "c"), "y": ("p", "q")}, probe_sets=("noise", "scenes"), attributions=("gradient_x_input", "saliency"))
STATE = {"zoo": "z", "models": ["c", "a"], "controls": ["b"], "probe_set": "builtin:scenes", "probe_count": 40, "layer_mode": "all", "method": "saliency",
         "preset": "paper code", "lam": 0.25, "method_view": "PL-LogME", "matrix_scale": "fixed", "lam_in_browser": True, "target": "a",
         "layer_source": "b", "layer_targets": ["c", "a"], "input_space": "pixels", "layer_method": "PL-LogME",
         "precision": "bf16", "compile": True, "attr_models": ["b", "a"], "attr_probes": ["scenes-0003", "scenes-0001"], "attr_view": "masked",
         "attr_opacity": 0.35, "attr_signed": False, "attr_clip": 97.5, "attr_smooth": 1.5, "attr_shared": True}  # fmt: skip


def test_round_trip_reproduces_every_shared_choice():
    params = link_params(STATE, zoo_models=CHOICES.zoos["z"])
    assert set(params) == set(LINK_KEYS)
    updates, notes = read_link(params, CHOICES)
    assert notes == [] and updates == STATE


def test_session_only_things_stay_out_of_links():
    state = {**STATE, "probe_set": "uploaded:0123abcd", "models": ["a", "my-upload-model"]}
    params = link_params(state, zoo_models=CHOICES.zoos["z"])
    assert "probes" not in params and params["models"] == "a"


@pytest.mark.parametrize(
    ("params", "left_out"),
    [
        ({"zoo": "../../etc"}, "zoo"),
        ({"probes": "/etc/passwd"}, "probes"),
        ({"probes": "uploaded:0123abcd"}, "probes"),  # another session's upload
        ({"probes": "builtin:../../secret"}, "probes"),
        ({"n": "1e9"}, "n"),
        ({"n": "2"}, "n"),
        ({"lam": "nan"}, "lam"),
        ({"lam": "-1"}, "lam"),
        ({"lam": "1e300"}, "lam"),
        ({"attribution": "os.system"}, "attribution"),
        ({"conventions": "evil"}, "conventions"),
        ({"input": "../raw"}, "input"),
        ({"layer_method": "eval"}, "layer_method"),
        ({"method": "__import__"}, "method"),
        ({"layers": "every"}, "layers"),
        ({"sweep": "yes"}, "sweep"),
        ({"precision": "fp8"}, "precision"),
        ({"compile": "true; rm -rf"}, "compile"),
        ({"models": "a,b"}, "models"),  # no zoo: nothing to check the names against
        ({"map_view": "<script>"}, "map_view"),
        ({"map_opacity": "2"}, "map_opacity"),
        ({"map_opacity": "nan"}, "map_opacity"),
        ({"map_clip": "50"}, "map_clip"),  # a percentile the page's control does not offer
        ({"map_smoothing": "-1"}, "map_smoothing"),
        ({"map_smoothing": "1e400"}, "map_smoothing"),
        ({"map_values": "1"}, "map_values"),
        ({"map_scale": "yes"}, "map_scale"),
    ],
)
def test_a_hostile_link_is_left_out_with_a_note(params, left_out):
    updates, notes = read_link(params, CHOICES)
    assert LINK_KEYS[left_out] not in updates
    assert len(notes) == 1 and f"the link's {left_out}=" in notes[0]


def test_the_lambda_sweep_and_compiling_go_into_a_link_only_when_on():
    params = link_params({**STATE, "lam_in_browser": False, "compile": False}, zoo_models=CHOICES.zoos["z"])
    assert "sweep" not in params and "compile" not in params
    assert read_link({"sweep": "0", "compile": "0"}, CHOICES) == ({"lam_in_browser": False, "compile": False}, [])


def test_models_outside_the_zoo_are_dropped_and_named():
    updates, notes = read_link({"zoo": "y", "models": "p,a,q,p"}, CHOICES)
    assert updates["models"] == ["p", "q"] and "'a'" in notes[0]


def test_link_url_quotes_values():
    url = link_url("http://h:8501/transferability?x=1", link_params({"zoo": "z", "models": ["a b", "c&d"]}, zoo_models=("a b", "c&d")))
    assert url == "http://h:8501/transferability?zoo=z&models=a+b%2Cc%26d"


def test_layer_targets_from_a_link_are_deduplicated_capped_and_left_to_the_page_to_check():
    from depara_core.session.link import MAX_LAYER_TARGETS

    many = ",".join(["b", "b", "../../etc/passwd", *[f"t{i}" for i in range(20)], "x" * 500])
    updates, notes = read_link({"layer_target": many}, CHOICES)
    targets = updates["layer_targets"]
    assert targets[:2] == ["b", "../../etc/passwd"] and len(targets) == MAX_LAYER_TARGETS and notes == []
    assert all(len(t) <= 200 for t in targets)  # names only: the page keeps those that are models of the session
    assert "layer_targets" not in read_link({"layer_target": ",,"}, CHOICES)[0]


@pytest.mark.parametrize("value,expected", [(0.5, 0.5), (0, 0.0), ("2.5", 2.5), (MAX_LAMBDA, MAX_LAMBDA)])
def test_a_lambda_in_range_is_taken(value, expected):
    assert checked_lambda(value) == expected


@pytest.mark.parametrize("value", [None, True, -0.1, MAX_LAMBDA + 1, math.inf, math.nan, "nan", "1e400", "x", [1.0], {"lam": 1}])
def test_anything_else_as_lambda_is_refused(value):
    """Links and the λ sweep's listener (what a visitor's browser sends) take only a λ the page allows."""
    assert checked_lambda(value) is None


def test_the_maps_display_goes_into_a_link_only_where_it_is_not_the_default():
    from depara_core.viz.display import MapDisplay

    default = {"attr_view": "blended", "attr_opacity": 0.6, "attr_signed": True, "attr_clip": 99.0, "attr_smooth": 0.0, "attr_shared": False}
    assert [default[k] for k in ("attr_view", "attr_opacity", "attr_signed", "attr_clip", "attr_smooth", "attr_shared")] == list(vars(MapDisplay()).values())
    shown = [p for p in link_params({**STATE, **default}, zoo_models=CHOICES.zoos["z"]) if p.startswith("map")]
    assert shown == ["maps", "map_probes"]  # which maps, but not how: as by default
    updates, notes = read_link({"map_opacity": "0.63", "map_clip": "97.3", "map_values": "signed", "map_scale": "own"}, CHOICES)
    assert notes == [] and updates == {"attr_opacity": 0.65, "attr_clip": 97.5, "attr_signed": True, "attr_shared": False}  # on the controls' steps


def test_the_maps_models_and_probes_are_capped_and_left_to_the_page_to_check():
    probes = ",".join(f"p{i}" for i in range(40)) + ",p3," + "x" * 500
    updates, notes = read_link({"maps": "b,zzz,b", "map_probes": probes}, CHOICES)
    assert notes == [] and updates["attr_models"] == ["b", "zzz"]  # the page keeps those its workspace has
    assert updates["attr_probes"] == [f"p{i}" for i in range(24)]


def test_whatever_a_link_holds_its_updates_stay_within_what_the_controls_offer():
    """Seeded random links of hostile and borderline values: reading never fails, and every value
    taken is one the app's controls could have set."""
    import random

    from depara_core.session.link import MAX_MAP_PROBES, MAX_PROBES
    from depara_core.viz.display import OFFERED, VIEWS

    pool = ["", "nan", "inf", "-inf", "1e400", "-0", "0", "1", "0.5", "2", "99.9", "90", "100", "4", "4.01", "-1e-9", "5000", "5001", "3", "2.5",
            "a", "b", "a,b,a", "z", "y", "noise", "builtin:noise", "builtin:../x", "uploaded:ab", "../../etc/passwd", "<script>", "x" * 300,
            "é,ü", ",,,", "masked", "map", "blended", "signed", "absolute", "shared", "own", "fixed", "pairs", "all", "encoder", "RSA", "bf16"]  # fmt: skip
    rng = random.Random(7)
    ranges = {key: OFFERED[name] for key, name in (("attr_opacity", "opacity"), ("attr_clip", "clip_percentile"), ("attr_smooth", "smoothing"))}
    for _ in range(3000):
        params = {p: rng.choice(pool) for p in rng.sample(sorted(LINK_KEYS), rng.randint(1, len(LINK_KEYS)))}
        updates, notes = read_link(params, CHOICES)
        assert set(updates) <= set(LINK_KEYS.values()) and all(isinstance(n, str) for n in notes)
        for key, (low, high, step) in ranges.items():
            if key in updates:
                v = updates[key]
                assert isinstance(v, float) and low <= v <= high and abs(v / step - round(v / step)) < 1e-6, (key, v)
        assert updates.get("attr_view", "blended") in VIEWS
        assert all(isinstance(updates[k], bool) for k in ("attr_signed", "attr_shared", "lam_in_browser", "compile") if k in updates)
        assert 0.0 <= updates.get("lam", 0.0) <= MAX_LAMBDA and math.isfinite(updates.get("lam", 0.0))
        assert isinstance(updates.get("probe_count", 3), int) and 3 <= updates.get("probe_count", 3) <= MAX_PROBES
        assert len(updates.get("attr_probes", ())) <= MAX_MAP_PROBES and all(len(p) <= 200 for p in updates.get("attr_probes", ()))
        assert updates.get("probe_set", "builtin:noise") in ("builtin:noise", "builtin:scenes")
        assert updates.get("zoo", "z") in CHOICES.zoos
