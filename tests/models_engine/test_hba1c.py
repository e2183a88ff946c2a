"""HbA1c and glucose conversions against the ADAG table and the IFCC master equation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from models_engine.physiology import hba1c

# ADAG table (Nathan et al. Diabetes Care 2008;31:1473), as listed in reference/twin-model.md §2.3.
ADAG_A1C = np.array([5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0])
ADAG_EAG_MG_DL = np.array([96.8, 125.5, 154.2, 182.9, 211.6, 240.3, 269.0, 297.7])
ADAG_EAG_ROUNDED = np.array([97, 126, 154, 183, 212, 240, 269, 298])


def test_it_reproduces_the_adag_table_of_estimated_average_glucose() -> None:
    eag = hba1c.mean_glucose_from_hba1c(ADAG_A1C)
    np.testing.assert_allclose(eag, ADAG_EAG_MG_DL, atol=0.05)
    # the table rounds half up (125.5 -> 126); a tiny epsilon absorbs 28.7 * 6 - 46.7 = 125.4999...
    np.testing.assert_array_equal(np.floor(eag + 0.5 + 1e-9).astype(int), ADAG_EAG_ROUNDED)


def test_it_inverts_the_adag_table_back_to_hba1c() -> None:
    np.testing.assert_allclose(hba1c.hba1c_from_mean_glucose(ADAG_EAG_MG_DL), ADAG_A1C, atol=2e-3)


def test_it_matches_the_adag_equation_in_mmol_per_litre() -> None:
    # eAG (mmol/L) = 1.5944 * A1C - 2.5944 (twin-model.md §2.3); 18.0 mg/dl per mmol/L glucose.
    eag_mmol = hba1c.mean_glucose_from_hba1c(ADAG_A1C) / 18.0
    np.testing.assert_allclose(eag_mmol, 1.5944 * ADAG_A1C - 2.5944, atol=2e-3)


def test_it_converts_the_diagnostic_threshold_of_six_point_five_percent_to_48_mmol_per_mol() -> (
    None
):
    ifcc = float(hba1c.hba1c_percent_to_mmol_mol(6.5))
    assert ifcc == pytest.approx(47.5, abs=0.05)
    assert round(ifcc) == 48


def test_it_round_trips_between_ngsp_and_ifcc_units() -> None:
    a1c = np.linspace(4.0, 14.0, 21)
    back = hba1c.hba1c_mmol_mol_to_percent(hba1c.hba1c_percent_to_mmol_mol(a1c))
    np.testing.assert_allclose(back, a1c, rtol=1e-12)


def test_it_recovers_a_known_fasting_to_hba1c_offset_from_noisy_pairs() -> None:
    rng = np.random.default_rng(7)
    fpg = rng.uniform(90.0, 200.0, 40)
    true_offset = 0.8
    measured = (fpg + 46.7) / 28.7 + true_offset + rng.normal(0.0, 0.2, fpg.size)
    offset = hba1c.fit_hba1c_offset(fpg, measured)
    assert offset == pytest.approx(true_offset, abs=0.1)
    predicted = hba1c.hba1c_from_fasting_glucose(fpg, offset)
    assert np.sqrt(np.mean((predicted - measured) ** 2)) < 0.25


def test_it_shrinks_the_offset_towards_the_prior_when_pairs_are_few() -> None:
    fpg = np.array([126.0])
    a1c = np.array([8.0])
    raw = hba1c.fit_hba1c_offset(fpg, a1c)
    shrunk = hba1c.fit_hba1c_offset(fpg, a1c, prior_offset=0.5, prior_weight=3.0)
    assert raw == pytest.approx(8.0 - (126.0 + 46.7) / 28.7)
    assert shrunk == pytest.approx((raw + 3.0 * 0.5) / 4.0)
    assert hba1c.fit_hba1c_offset([], [], prior_offset=0.5, prior_weight=1.0) == pytest.approx(0.5)


def test_it_keeps_the_shape_of_array_inputs() -> None:
    fpg = np.full((3, 4), 110.0)
    assert hba1c.hba1c_from_fasting_glucose(fpg, np.full(4, 0.3)).shape == (3, 4)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: hba1c.hba1c_from_mean_glucose(7.0), "mean_glucose_mg_dl"),  # mmol/L slipped in
        (lambda: hba1c.mean_glucose_from_hba1c(0.065), "hba1c_percent"),  # a fraction
        (lambda: hba1c.hba1c_percent_to_mmol_mol(48.0), "hba1c_percent"),  # already IFCC
        (lambda: hba1c.hba1c_mmol_mol_to_percent(np.nan), "hba1c_mmol_mol"),
        (lambda: hba1c.hba1c_from_fasting_glucose(100.0, 25.0), "offset_percent"),
        (lambda: hba1c.fit_hba1c_offset([100.0, 110.0], [6.0]), "equal length"),
        (lambda: hba1c.fit_hba1c_offset([], []), "nothing to fit"),
        (lambda: hba1c.fit_hba1c_offset([100.0], [6.0], prior_weight=-1.0), "prior_weight"),
    ],
)
def test_it_rejects_out_of_range_inputs_naming_the_field(
    call: Callable[[], object], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        call()
