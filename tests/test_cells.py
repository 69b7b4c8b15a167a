"""A notebook cell run again replaces what its last run started, in a real kernel."""

import pytest


def test_a_cell_run_again_replaces_the_servers_it_started(kernel):
    kernel("import livestream\nservers = []")
    running = "[server.running for server in servers]"
    kernel("servers.append(livestream.serve())", cell="exercise")
    kernel("servers += [livestream.serve(), livestream.serve()]", cell="other")
    assert kernel("", value=running) == "[True, True, True]"
    # the exercise, changed and run again: its last server makes way
    kernel("servers.append(livestream.serve())", cell="exercise")
    assert kernel("", value=running) == "[False, True, True, True]"
    kernel("servers.append(livestream.serve())", cell="other")
    assert kernel("", value=running) == "[False, False, False, True, True]"
    # a run without a cell id (nbclient, a console) replaces nothing
    kernel("servers.append(livestream.serve())")
    assert kernel("", value=running) == "[False, False, False, True, True, True]"


@pytest.mark.redis
def test_a_cell_run_again_replaces_the_services_it_started(kernel):
    kernel("from livestream.tools.services import start_redis\nstarted = []")
    running = "[service.process.poll() is None for service in started]"
    kernel("started.append(start_redis())", cell="services")
    kernel("started.append(start_redis())", cell="services")
    assert kernel("", value=running) == "[False, True]"
    kernel("started[-1].stop()")
