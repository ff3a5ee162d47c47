import pytest

from titans_ts.data import get_dataset_info, load_dataset, make_splits, protocol_for, registered_datasets
from titans_ts.errors import DatasetNotFoundError

SHAPES = {
    "ETTh1": (17420, 7),
    "ETTh2": (17420, 7),
    "ETTm1": (69680, 7),
    "ETTm2": (69680, 7),
    "weather": (52696, 21),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_bundled_datasets_load_with_registered_shape(name):
    frame = load_dataset(name)
    assert frame.shape == SHAPES[name]
    assert frame.index.name == "date"
    assert str(frame.index.dtype).startswith("datetime64")
    assert list(frame.columns)[-1] == "OT"
    info = get_dataset_info(name)
    assert (info.rows, info.columns) == SHAPES[name]


@pytest.mark.parametrize(
    "name, expected",
    [("ETTh1", (8449, 2785, 2785)), ("ETTm1", (34369, 11425, 11425)), ("weather", (36696, 5175, 10444))],
)
def test_window_counts_match_time_series_library(name, expected):
    splits = make_splits(load_dataset(name), 96, 96, protocol_for(name))
    assert (len(splits.train), len(splits.val), len(splits.test)) == expected


def test_registry_lists_supplied_datasets_with_canonical_schema():
    infos = {info.name: info for info in registered_datasets()}
    assert infos["ECL"].file == "electricity.csv" and infos["ECL"].columns == 321
    assert infos["Traffic"].file == "traffic.csv" and infos["Traffic"].columns == 862
    assert infos["ECL"].bundled is None and infos["Traffic"].bundled is None
    assert infos["ECL"].sha256.startswith("7e45845d")


def test_names_are_case_insensitive_and_aliases_work():
    assert get_dataset_info("etth1").name == "ETTh1"
    assert get_dataset_info("electricity").name == "ECL"
    assert get_dataset_info("traffic.csv").name == "Traffic"


@pytest.mark.parametrize("wrong, suggestion", [("ETTh", "ETTh1"), ("weathr", "weather"), ("electricty", "ECL")])
def test_unknown_name_suggests_the_closest(wrong, suggestion):
    with pytest.raises(DatasetNotFoundError, match=f"Unknown dataset '{wrong}'.*{suggestion}"):
        load_dataset(wrong)
