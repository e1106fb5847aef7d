"""The API page's example: a real exchange with the service, made when the docs are built."""

import json
from pathlib import Path

from serving_support import MODEL_NAME, Registry, settings_for

from {{ cookiecutter.package_name }}.documentation.pages import API_EXAMPLE, write_api_pages


def test_the_example_is_a_real_answer_of_the_champion_to_a_row_awaiting_a_score(
    registry: Registry, tmp_path: Path
) -> None:
    settings = settings_for(registry.folder, prediction_log_dir=tmp_path / "log")
    write_api_pages(settings, tmp_path)
    page = (tmp_path / API_EXAMPLE).read_text(encoding="utf-8")
    document = json.loads((tmp_path / "openapi.json").read_text(encoding="utf-8"))

    assert f"served `{MODEL_NAME}` v{registry.champion} (the champion)" in page
    assert document["x-model-version"] == registry.champion
    answers = [json.loads(block.split("```", 1)[0]) for block in page.split("```json\n")[1:]]
    good, refused = answers
    first_unscored = int(registry.unlabelled[registry.contract.id_column].min())
    assert good["model"]["version"] == registry.champion
    assert good["predictions"][0]["id"] == first_unscored
    assert good["predictions"][0]["prediction"] in set(
        registry.table[registry.contract.label_column]
    )
    missing = registry.contract.feature_columns[0]
    assert refused["errors"][0]["field"] == f"records[0].{missing}"
    assert "**POST /predict**, answered **200**" in page
    assert "**POST /predict**, answered **422**" in page
    assert "| POST | `/predict` |" in page
    # The example never reaches the prediction log, so monitoring never sees it.
    assert not (tmp_path / "log").exists()


def test_without_a_champion_the_page_says_so_and_shows_no_answer(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, serving_startup_wait_seconds=5)
    write_api_pages(settings, tmp_path)
    page = (tmp_path / API_EXAMPLE).read_text(encoding="utf-8")
    assert "No champion is registered in this checkout yet" in page
    assert "```json" not in page
    assert "| GET | `/ready` |" in page
