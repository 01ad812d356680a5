import pytest

from tests.factories_scenes import publish_scene_types


@pytest.fixture(scope="session", autouse=True)
async def scene_behaviour_types(app, tmp_path_factory):
    """own_cup (shipped catalogue) and the test types, published as scene methodologies."""
    await publish_scene_types(tmp_path_factory.mktemp("scene-types"))
