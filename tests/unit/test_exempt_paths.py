"""One exempt-path rule (``ww.api.auth.is_exempt``) for auth, the rate limit and the
control gate: what one of them leaves open, the others do too."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ww.api.auth import EXEMPT_PATHS, METRICS_PATH, Access, access, is_exempt
from ww.api.control_gate import open_during_lockdown
from ww.api.docs_ui import STATIC_URL
from ww.api.ratelimit import route_group

GROUPS = frozenset({"episodes", "control"})

paths = st.one_of(
    st.sampled_from(sorted(EXEMPT_PATHS | {METRICS_PATH, "/static/", STATIC_URL, "/api/v1/"})),
    st.builds(
        "".join,
        st.lists(
            st.sampled_from(["/", "static", "docs", "api", "v1", "episodes", "x.css", "metrics"]),
            max_size=6,
        ),
    ),
)


@given(paths)
def test_auth_rate_limit_and_gate_share_the_exempt_rule(path: str) -> None:
    exempt = is_exempt(path)
    assert (access("GET", path) is Access.EXEMPT) == exempt
    assert (route_group(path, GROUPS) is None) == exempt
    assert open_during_lockdown(path) == (exempt or path == METRICS_PATH)


def test_only_the_docs_assets_are_exempt_under_static() -> None:
    assert is_exempt(STATIC_URL + "/swagger-ui/swagger-ui.css")
    # Nothing else is served under /static: counted like any unknown path.
    assert not is_exempt("/static/other.css")
    assert route_group("/static/other.css", GROUPS) == "other"
    assert route_group(METRICS_PATH, GROUPS) == "other"
