"""The what-if on the served customer view: `evaluate-intervention --store`'s files in the home are
read by the running service (and re-read when they change); bad input answers clearly."""

from __future__ import annotations

import re

import httpx
import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # a service process

PROBLEM = "elderly-hospitalisation"


@pytest.fixture(scope="module")
def estimates():
    from tests.test_whatif_page import region_estimates

    return region_estimates()


@pytest.fixture(scope="module")
def live(fixture_home_template, tmp_path_factory, estimates):
    from tests.serving_server import served_copy
    from training.whatif import write_estimate

    def prepare(home):
        for found in estimates.values():
            write_estimate(home / "interventions", found)

    with served_copy(fixture_home_template, tmp_path_factory.mktemp("whatif-page") / "home", prepare) as served:
        yield served


def get(live, path: str) -> httpx.Response:
    client, keys, _ = live
    return client.get(path, headers={"Authorization": f"Bearer {keys['clinician']}"})


def test_the_served_view_shows_the_stored_estimates_and_rereads_them(live, estimates):
    import numpy as np

    from tests.serving_fixture import members, region
    from training.interventions import customer_covariates
    from training.whatif import customer_whatif, write_estimate

    _, _, home = live
    ds = region()
    at = pd.Timestamp(ds.metadata["extract_end"]).normalize()
    ids = members(PROBLEM)
    rows = customer_covariates(ds.events, ds.customers, np.array(ids), at)
    supported = next(int(r["subject_id"]) for _, r in rows.iterrows()
                     if customer_whatif(estimates["home_rehabilitation"], "home_rehabilitation", r, 0.1, "ADMIT/UNPLANNED", 90).supported)
    page = get(live, f"/ui/customers/{supported}?lang=en")
    assert page.status_code == 200, page.text[:500]
    block = page.text[page.text.index(f'id="whatif-{PROBLEM}"'):]
    block = block[: block.index("</div>")]
    assert re.search(r'data-intervention="home_rehabilitation" data-supported="yes"><strong>If home rehabilitation started now'
                     r"</strong>: risk [\d.]+% → [\d.]+%", block)
    # another dataset's estimate replaces the file: the next page read says so, with no number
    write_estimate(home / "interventions", estimates["home_rehabilitation"].model_copy(update={"dataset_events": 1}))
    page = get(live, f"/ui/customers/{supported}?lang=en").text
    assert 'data-supported="yes"><strong>If home rehabilitation' not in page
    assert "home rehabilitation started now</strong>: no estimate for this customer: it was made from another dataset." in page


def test_an_unknown_customer_is_a_clear_404(live):
    response = get(live, "/ui/customers/999999?lang=en")
    assert response.status_code == 404 and "999999" in response.text
