"""The suite's own setup: what ``pytest.ini`` asks of pytest-xdist holds."""
import pytest

pytestmark = pytest.mark.xdist_group('suite_setup')


def test_xdist_groups_reach_the_scheduler(request):
    """Under ``--dist loadgroup`` pytest-xdist sends a test's
    ``xdist_group`` to the scheduler as a suffix of its node id. A pytest
    that drops the suffix splits every group over the workers without a
    word, and each worker then builds the groups' costly fixtures
    (the exported model, the uninterrupted run) again."""
    if not getattr(request.config.option, 'loadgroup', False):
        pytest.skip('not a pytest-xdist worker under --dist loadgroup')
    import xdist
    assert request.node.nodeid.endswith('@suite_setup'), (
        f'pytest {pytest.__version__} with pytest-xdist '
        f'{xdist.__version__} does not group tests (node id '
        f'{request.node.nodeid}); install requirements/tests.txt')
